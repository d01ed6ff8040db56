package auth

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Issuer mints EdDSA (Ed25519) tokens from a fixed seed, for demos and
// tests ONLY: its key is derived from a seed that sits in configuration or
// code, it never rotates, and anyone who knows the seed can mint tokens
// that every gateway trusting its key set accepts. Production tokens come
// from an identity provider that guards its keys.
//
// Serve JWKS() at a URL and point a Config's JWKSURL at it; Mint then
// gives tokens that Verify accepts.
type Issuer struct {
	signer   jose.Signer
	issuer   string
	audience string
	jwks     []byte
}

// NewDemoIssuer returns an Issuer whose Ed25519 key is derived from seed
// (ed25519.SeedSize = 32 bytes; the same seed always gives the same key),
// naming issuer in "iss", audience in "aud" and kid in the "kid" header
// and its key set.
func NewDemoIssuer(seed []byte, issuer, audience, kid string) (*Issuer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("auth: demo issuer seed must be %d bytes, got %d", ed25519.SeedSize, len(seed))
	}
	if issuer == "" || audience == "" || kid == "" {
		return nil, errors.New("auth: demo issuer needs an issuer, an audience and a kid")
	}
	priv := ed25519.NewKeyFromSeed(seed)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("auth: demo issuer: %w", err)
	}
	pub := jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: string(jose.EdDSA), Use: "sig"}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return nil, fmt.Errorf("auth: demo issuer: %w", err)
	}
	return &Issuer{signer: signer, issuer: issuer, audience: audience, jwks: set}, nil
}

// JWKS returns the public JSON Web Key Set document of the Issuer's key.
func (i *Issuer) JWKS() []byte { return append([]byte(nil), i.jwks...) }

// Mint returns a signed token for sub, valid from now for ttl, with the
// claims in extra added ("scope", "tenant", ...). extra may not set the
// registered claims Mint sets itself: iss, sub, aud, iat, nbf, exp.
func (i *Issuer) Mint(sub string, ttl time.Duration, extra map[string]any) (string, error) {
	return i.MintAt(time.Now(), sub, ttl, extra)
}

// MintAt is Mint for a token issued at now, rather than the current time.
func (i *Issuer) MintAt(now time.Time, sub string, ttl time.Duration, extra map[string]any) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("auth: ttl must be positive, got %s", ttl)
	}
	claims := make(map[string]any, len(extra)+6)
	for k, v := range extra {
		switch k {
		case "iss", "sub", "aud", "iat", "nbf", "exp":
			return "", fmt.Errorf("auth: extra claim %q is set by Mint", k)
		}
		claims[k] = v
	}
	claims["iss"] = i.issuer
	claims["aud"] = i.audience
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(ttl).Unix()
	if sub != "" {
		claims["sub"] = sub
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("auth: claims: %w", err)
	}
	jws, err := i.signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
