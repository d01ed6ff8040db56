package auth

import (
	"bytes"
	"crypto/sha256"
	"net/http"
	"testing"
	"time"
)

// demoSeed is a fixed 32-byte seed.
var demoSeed = func() []byte { s := sha256.Sum256([]byte("braid-demo")); return s[:] }()

func TestDemoIssuer(t *testing.T) {
	iss, err := NewDemoIssuer(demoSeed, testIssuer, testAudience, "demo-1")
	if err != nil {
		t.Fatal(err)
	}
	again, err := NewDemoIssuer(demoSeed, testIssuer, testAudience, "demo-1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(iss.JWKS(), again.JWKS()) {
		t.Fatal("the same seed gave different key sets")
	}
	srv := newHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(iss.JWKS())
	}))
	clk := newClock()
	cfg := baseConfig(srv.URL)
	cfg.Scopes = []string{"orders:read"}
	v := newVerifier(t, cfg, clk)

	tok, err := iss.MintAt(clk.Now(), "user-7", time.Hour, map[string]any{"scope": "orders:read", "tenant": "acme"})
	if err != nil {
		t.Fatal(err)
	}
	id := mustVerify(t, v, tok)
	if tenant, _ := id.Lookup("claims.tenant"); id.Subject != "user-7" || tenant != "acme" || id.KeyID != "demo-1" {
		t.Fatalf("identity = %+v", id)
	}
	clk.Advance(time.Hour + defaultClockSkew)
	_, err = verify(v, tok)
	wantErr(t, err, ErrInvalidToken, ErrExpired)

	// Mint uses the real clock; a Verifier on the real clock accepts it.
	live, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	tok, err = iss.Mint("user-8", time.Minute, map[string]any{"scope": "orders:read"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify(live, tok); err != nil {
		t.Fatal(err)
	}

	other, err := NewDemoIssuer(bytes.Repeat([]byte{1}, 32), testIssuer, testAudience, "demo-1")
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.MintAt(clk.Now(), "user-7", time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = verify(live, forged)
	wantErr(t, err, ErrInvalidToken, ErrSignature)
}

func TestDemoIssuerRefuses(t *testing.T) {
	if _, err := NewDemoIssuer([]byte("short"), testIssuer, testAudience, "k"); err == nil {
		t.Error("a short seed was accepted")
	}
	if _, err := NewDemoIssuer(demoSeed, "", testAudience, "k"); err == nil {
		t.Error("an empty issuer was accepted")
	}
	iss, err := NewDemoIssuer(demoSeed, testIssuer, testAudience, "k")
	if err != nil {
		t.Fatal(err)
	}
	for _, claim := range []string{"iss", "sub", "aud", "iat", "nbf", "exp"} {
		if _, err := iss.Mint("u", time.Minute, map[string]any{claim: "x"}); err == nil {
			t.Errorf("extra %q was accepted", claim)
		}
	}
	if _, err := iss.Mint("u", 0, nil); err == nil {
		t.Error("a zero ttl was accepted")
	}
	if _, err := iss.Mint("u", time.Minute, map[string]any{"bad": func() {}}); err == nil {
		t.Error("an unmarshalable claim was accepted")
	}
}
