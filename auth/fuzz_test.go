package auth

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzVerify: whatever the Authorization header, Verify does not panic,
// fails only with an *Error of one of the three kinds whose challenge is a
// valid header value, and accepts only tokens from the configured issuer,
// for the configured audience, not expired.
func FuzzVerify(f *testing.F) {
	k := keysOnce()
	demo, err := NewDemoIssuer(demoSeed, testIssuer, testAudience, "demo-1")
	if err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(f.TempDir(), "jwks.json")
	var demoSet jose.JSONWebKeySet
	if err := json.Unmarshal(demo.JWKS(), &demoSet); err != nil {
		f.Fatal(err)
	}
	keys := append(defaultKeys(), demoSet.Keys...)
	if err := os.WriteFile(path, keySetJSON(f, keys...), 0o600); err != nil {
		f.Fatal(err)
	}
	v, err := New(Config{
		Issuer: testIssuer, Audiences: []string{testAudience}, JWKSFile: path,
		Algorithms: []string{"RS256", "PS256", "ES256", "EdDSA"},
	}, WithClock(func() time.Time { return epoch }))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)

	claims := claimsAt(epoch)
	good, err := demo.MintAt(epoch, "user-1", time.Hour, map[string]any{"scope": "a b", "org": map[string]any{"id": 1}})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), "Bearer "+good); err != nil {
		f.Fatalf("the accepted seed is refused: %v", err)
	}
	for _, h := range []string{
		"Bearer " + good,
		"bearer " + good,
		"Bearer " + sign(f, jose.RS256, k.rsa, "rsa-1", claims),
		"Bearer " + sign(f, jose.ES256, k.ec, "ec-1", claims),
		"Bearer " + sign(f, jose.EdDSA, k.ed, "", claims),
		"Bearer " + sign(f, jose.EdDSA, k.ed, "ed-1", with(claims, map[string]any{"iss": "https://evil.test"})),
		"Bearer " + sign(f, jose.EdDSA, k.ed, "ed-1", with(claims, map[string]any{"exp": nil})),
		"Bearer " + sign(f, jose.HS256, []byte(strings.Repeat("k", 32)), "rsa-1", claims),
		"Bearer " + rawToken(f, map[string]any{"alg": "none"}, claims, nil),
		"Bearer " + rawToken(f, map[string]any{"alg": "EdDSA", "kid": "ed-1", "crit": []string{"x"}, "x": 1}, claims, make([]byte, 64)),
		"Bearer " + rawToken(f, map[string]any{"alg": "RS256", "jwk": map[string]any{"kty": "oct", "k": "AA"}}, claims, []byte{1}),
		"Bearer e30.e30.", "Bearer ..", "Bearer a.b.c", "Basic Zm9vOmJhcg==", "Bearer", "", "Bearer a b",
	} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, header string) {
		id, err := v.Verify(context.Background(), header)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if !errors.Is(err, ErrMissingToken) && !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrForbidden) {
				t.Fatalf("error %v has no kind", err)
			}
			if c := ae.Challenge(); strings.ContainsFunc(c, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
				t.Fatalf("challenge %q is not a valid header value", c)
			}
			return
		}
		if id.Issuer != testIssuer {
			t.Fatalf("accepted a token from issuer %q", id.Issuer)
		}
		if !slices.Contains(id.Audience, testAudience) {
			t.Fatalf("accepted a token for audience %q", id.Audience)
		}
		if !epoch.Before(id.ExpiresAt.Add(defaultClockSkew)) {
			t.Fatalf("accepted a token that expired at %s", id.ExpiresAt)
		}
	})
}
