package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

func TestParseKeySet(t *testing.T) {
	k := keysOnce()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv := jose.JSONWebKey{Key: k.ed, KeyID: "private", Algorithm: "EdDSA"}
	privJSON, err := priv.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	set := keySetJSON(t,
		jwk(k.rsa, "rsa", "RS256"),
		jwk(k.ec, "ec", ""),
		jwk(p384, "p384", "ES384"),
		jwk(k.ed, "ed", "EdDSA"),
		jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "hmac", Algorithm: "HS256"},
		jwk(small, "small", "RS256"),
		jose.JSONWebKey{Key: &k.rsa2.PublicKey, KeyID: "enc", Use: "enc"},
		jwk(k.rsa2, "mismatch", "ES256"),
		jwk(k.rsa2, "oaep", "RSA-OAEP"),
	)
	// Append raw entries no marshaller would produce.
	raw := strings.TrimSuffix(string(set), "]}") +
		`,` + string(privJSON) +
		`,{"kty":"OKP","crv":"X25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","kid":"x25519"}` +
		`,{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ","kid":"offcurve"}` +
		`,{"kty":"mystery","kid":"mystery"}` + `]}`
	ks, skipped, err := parseKeySet([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, key := range ks.keys {
		kids = append(kids, key.kid)
	}
	if got := strings.Join(kids, ","); got != "rsa,ec,p384,ed" {
		t.Fatalf("usable keys = %s, want rsa,ec,p384,ed", got)
	}
	if len(skipped) != 9 {
		t.Fatalf("skipped %d keys, want 9: %q", len(skipped), skipped)
	}
	for _, want := range []string{"private key material", "2048", `use is "enc"`, "does not fit", "RSA-OAEP"} {
		if !strings.Contains(strings.Join(skipped, "\n"), want) {
			t.Errorf("no skipped key says %q: %q", want, skipped)
		}
	}

	for _, tc := range []struct{ alg, kid string }{
		{"RS256", "rsa"}, {"ES256", "ec"}, {"ES384", "p384"}, {"EdDSA", "ed"},
	} {
		if keys, known := ks.candidates(tc.kid, tc.alg); len(keys) != 1 || !known {
			t.Errorf("candidates(%s, %s) = %d keys", tc.kid, tc.alg, len(keys))
		}
	}
	for _, tc := range []struct{ alg, kid string }{
		{"PS256", "rsa"}, // the JWK says RS256
		{"ES384", "ec"},  // P-256 key
		{"ES256", "p384"},
		{"RS256", "ed"},
		{"HS256", "rsa"},
		{"EdDSA", "rsa"},
	} {
		if keys, known := ks.candidates(tc.kid, tc.alg); len(keys) != 0 || !known {
			t.Errorf("candidates(%s, %s) = %d keys, known %v; want none, known", tc.kid, tc.alg, len(keys), known)
		}
	}
	if keys, known := ks.candidates("hmac", "HS256"); len(keys) != 0 || known {
		t.Error("the symmetric key is usable")
	}
	if keys, _ := ks.candidates("", "ES256"); len(keys) != 1 {
		t.Errorf("no-kid ES256 candidates = %d, want 1", len(keys))
	}
}

func TestParseKeySetRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"not JSON":         `<html>`,
		"an array":         `[1,2]`,
		"no keys":          `{}`,
		"empty keys":       `{"keys":[]}`,
		"null":             `null`,
		"keys not array":   `{"keys":{"kty":"RSA"}}`,
		"only unusable":    `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`,
		"trailing garbage": `{"keys":[]} {}`,
	} {
		if _, _, err := parseKeySet([]byte(doc)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestFits(t *testing.T) {
	k := keysOnce()
	for _, alg := range []string{"HS256", "HS384", "HS512", "none", ""} {
		for _, pub := range []any{&k.rsa.PublicKey, &k.ec.PublicKey, k.ed.Public(), []byte("secret")} {
			if fits(alg, pub) {
				t.Errorf("fits(%q, %T) = true", alg, pub)
			}
		}
	}
}
