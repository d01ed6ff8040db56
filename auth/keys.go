package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// minRSABits is the smallest RSA modulus accepted in a key set; go-jose
// refuses moduli over 4096 bits.
const minRSABits = 2048

// supportedAlgorithm reports whether alg is a signature algorithm this
// package verifies.
func supportedAlgorithm(alg string) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA":
		return true
	}
	return false
}

// fits reports whether pub is a key of the type and size that alg needs:
// RSA for RS*/PS*, ECDSA on the matching curve for ES*, Ed25519 for EdDSA.
// It is what keeps a token from choosing how its key is used.
func fits(alg string, pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return true
		}
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		case "ES512":
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// key is one usable verification key of a key set.
type key struct {
	kid string
	alg string // the JWK's "alg"; "" when it has none
	pub crypto.PublicKey
}

// usableFor reports whether k may verify a token signed with alg.
func (k *key) usableFor(alg string) bool {
	return (k.alg == "" || k.alg == alg) && fits(alg, k.pub)
}

// keySet is an immutable parsed JSON Web Key Set.
type keySet struct {
	keys    []*key
	byKID   map[string][]*key
	fetched time.Time // when it was fetched (or read)
}

// candidates returns the keys that may verify a token with kid and alg. A
// token without kid may use any key of the set that fits alg.
func (s *keySet) candidates(kid, alg string) (keys []*key, kidKnown bool) {
	pool := s.keys
	if kid != "" {
		pool = s.byKID[kid]
		kidKnown = len(pool) > 0
	}
	for _, k := range pool {
		if k.usableFor(alg) {
			keys = append(keys, k)
		}
	}
	return keys, kidKnown
}

// parseKeySet parses a JSON Web Key Set. Keys it cannot use are skipped
// and described in skipped (RFC 7517 §5: unknown key types are ignored):
// symmetric keys, encryption keys ("use": "enc"), RSA keys under 2048 bits
// and keys carrying private material (a key set is public; one that is not
// has leaked and must not be trusted). It fails when the document is not a
// key set or holds no usable key.
func parseKeySet(data []byte) (set *keySet, skipped []string, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, fmt.Errorf("key set is not a JSON Web Key Set: %w", err)
	}
	if dec.More() {
		return nil, nil, errors.New("key set has data after the JSON object")
	}
	set = &keySet{byKID: make(map[string][]*key)}
	for i, raw := range doc.Keys {
		k, err := parseKey(raw)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("keys[%d]: %v", i, err))
			continue
		}
		set.keys = append(set.keys, k)
		if k.kid != "" {
			set.byKID[k.kid] = append(set.byKID[k.kid], k)
		}
	}
	if len(set.keys) == 0 {
		return nil, skipped, fmt.Errorf("key set holds no usable signing key (%d keys)", len(doc.Keys))
	}
	return set, skipped, nil
}

// parseKey parses one JWK into a usable public verification key.
func parseKey(raw json.RawMessage) (*key, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	id := fmt.Sprintf("kid %q", jwk.KeyID)
	if jwk.Use != "" && jwk.Use != "sig" {
		return nil, fmt.Errorf("%s: use is %q, not sig", id, jwk.Use)
	}
	if jwk.Algorithm != "" && !supportedAlgorithm(jwk.Algorithm) {
		return nil, fmt.Errorf("%s: alg %q is not a supported signature algorithm", id, jwk.Algorithm)
	}
	var pub crypto.PublicKey
	switch k := jwk.Key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("%s: RSA key of %d bits, under %d", id, k.N.BitLen(), minRSABits)
		}
		pub = k
	case *ecdsa.PublicKey:
		pub = k
	case ed25519.PublicKey:
		pub = k
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		return nil, fmt.Errorf("%s: holds private key material", id)
	default:
		return nil, fmt.Errorf("%s: key type %T is not a supported public key", id, jwk.Key)
	}
	if jwk.Algorithm != "" && !fits(jwk.Algorithm, pub) {
		return nil, fmt.Errorf("%s: alg %s does not fit the key", id, jwk.Algorithm)
	}
	return &key{kid: jwk.KeyID, alg: jwk.Algorithm, pub: pub}, nil
}
