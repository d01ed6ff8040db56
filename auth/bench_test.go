package auth

import (
	"context"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// BenchmarkVerify: one token verified against a cached key, the cost every
// protected request pays. The signature check dominates; the rest is
// parsing the header and decoding the claims.
func BenchmarkVerify(b *testing.B) {
	k := keysOnce()
	srv := newJWKSServer(b, defaultKeys()...)
	clk := newClock()
	cfg := baseConfig(srv.URL)
	cfg.Scopes = []string{"orders:read"}
	v := newVerifier(b, cfg, clk)
	claims := with(claimsAt(clk.Now()), map[string]any{"scope": "orders:read profile", "tenant": "acme"})
	for _, bc := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		priv any
		kid  string
	}{
		{"RS256", jose.RS256, k.rsa, "rsa-1"},
		{"ES256", jose.ES256, k.ec, "ec-1"},
		{"EdDSA", jose.EdDSA, k.ed, "ed-1"},
	} {
		token := sign(b, bc.alg, bc.priv, bc.kid, claims)
		ctx := context.Background()
		if _, err := v.Verify(ctx, "Bearer "+token); err != nil { // and the key set is cached
			b.Fatal(err)
		}
		b.Run(bc.name+"/full", func(b *testing.B) { // a token seen for the first time
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.verifyToken(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/remembered", func(b *testing.B) { // the same token again
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, "Bearer "+token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("refused/expired", func(b *testing.B) {
		header := "Bearer " + sign(b, jose.EdDSA, k.ed, "ed-1", with(claims, map[string]any{"exp": clk.Now().Add(-time.Hour).Unix()}))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(context.Background(), header); err == nil {
				b.Fatal("accepted")
			}
		}
	})
}
