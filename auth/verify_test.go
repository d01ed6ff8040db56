package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestVerifyValid(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, defaultKeys()...)
	clk := newClock()
	cfg := baseConfig(srv.URL)
	cfg.Algorithms = []string{"RS256", "PS256", "ES256", "EdDSA"}
	v := newVerifier(t, cfg, clk)
	for _, tc := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		priv any
		kid  string
	}{
		{"RS256", jose.RS256, k.rsa, "rsa-1"},
		{"ES256", jose.ES256, k.ec, "ec-1"},
		{"EdDSA", jose.EdDSA, k.ed, "ed-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := mustVerify(t, v, sign(t, tc.alg, tc.priv, tc.kid, claimsAt(clk.Now())))
			if id.Subject != "user-42" || id.Issuer != testIssuer || id.KeyID != tc.kid ||
				len(id.Audience) != 1 || id.Audience[0] != testAudience || !id.ExpiresAt.Equal(clk.Now().Add(time.Hour)) {
				t.Fatalf("identity = %+v", id)
			}
		})
	}
	t.Run("PS256 with a key whose JWK names no alg", func(t *testing.T) {
		srv.set(t, jwk(k.rsa2, "rsa-2", ""))
		clk.Advance(defaultMinRefetchInterval) // the set may be fetched again
		mustVerify(t, v, sign(t, jose.PS256, k.rsa2, "rsa-2", claimsAt(clk.Now())))
	})
	t.Run("no kid, one fitting key", func(t *testing.T) {
		mustVerify(t, v, sign(t, jose.RS256, k.rsa2, "", claimsAt(clk.Now())))
	})
	t.Run("no kid, several fitting keys", func(t *testing.T) {
		srv.set(t, jwk(k.rsa, "rsa-1", "RS256"), jwk(k.rsa2, "rsa-2", ""))
		clk.Advance(defaultMinRefetchInterval)
		mustVerify(t, v, sign(t, jose.RS256, k.rsa, "rsa-1", claimsAt(clk.Now()))) // a new kid: refetched
		// Both RSA keys fit a token without kid: both are tried.
		mustVerify(t, v, sign(t, jose.RS256, k.rsa2, "", claimsAt(clk.Now())))
		mustVerify(t, v, sign(t, jose.RS256, k.rsa, "", claimsAt(clk.Now())))
	})
	t.Run("no kid, too many fitting keys", func(t *testing.T) {
		var keys []jose.JSONWebKey
		for range maxCandidates + 1 {
			_, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, jwk(priv, "", "EdDSA"))
		}
		keys = append(keys, jwk(k.ed, "", "EdDSA"))
		srv := newJWKSServer(t, keys...)
		v := newVerifier(t, baseConfig(srv.URL), clk)
		_, err := verify(v, sign(t, jose.EdDSA, k.ed, "", claimsAt(clk.Now())))
		wantErr(t, err, ErrInvalidToken, ErrUnknownKey)
	})
	t.Run("aud as an array", func(t *testing.T) {
		c := with(claimsAt(clk.Now()), map[string]any{"aud": []string{"other", testAudience}})
		mustVerify(t, v, sign(t, jose.RS256, k.rsa2, "rsa-2", c))
	})
}

func TestVerifyTimeClaims(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, defaultKeys()...)
	clk := newClock()
	v := newVerifier(t, baseConfig(srv.URL), clk) // skew: the default 30s
	now := clk.Now()
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	for _, tc := range []struct {
		name    string
		changes map[string]any
		reason  error // nil: valid
	}{
		{"exp in an hour", nil, nil},
		{"exp now, within skew", map[string]any{"exp": at(0)}, nil},
		{"exp 29s ago, within skew", map[string]any{"exp": at(-29 * time.Second)}, nil},
		{"exp 29.5s ago, within skew", map[string]any{"exp": float64(now.Unix()) - 29.5}, nil},
		{"exp 30s ago, at skew", map[string]any{"exp": at(-30 * time.Second)}, ErrExpired},
		{"exp an hour ago", map[string]any{"exp": at(-time.Hour)}, ErrExpired},
		{"no exp", map[string]any{"exp": nil}, ErrClaims},
		{"exp a string", map[string]any{"exp": "tomorrow"}, ErrClaims},
		{"exp out of range", map[string]any{"exp": 1e300}, ErrClaims},
		{"nbf 30s ahead, at skew", map[string]any{"nbf": at(30 * time.Second)}, nil},
		{"nbf 31s ahead", map[string]any{"nbf": at(31 * time.Second)}, ErrNotYetValid},
		{"iat 30s ahead, at skew", map[string]any{"iat": at(30 * time.Second)}, nil},
		{"iat 31s ahead", map[string]any{"iat": at(31 * time.Second)}, ErrNotYetValid},
		{"iat an hour ago", map[string]any{"iat": at(-time.Hour)}, nil},
		{"nbf a bool", map[string]any{"nbf": true}, ErrClaims},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, jose.EdDSA, k.ed, "ed-1", with(claimsAt(now), tc.changes))
			_, err := verify(v, tok)
			if tc.reason == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			wantErr(t, err, ErrInvalidToken, tc.reason)
		})
	}

	t.Run("the clock moves past exp+skew", func(t *testing.T) {
		clk := newClock()
		v := newVerifier(t, Config{Issuer: testIssuer, Audiences: []string{testAudience}, JWKSURL: srv.URL,
			ClockSkew: 5 * time.Second}, clk)
		tok := sign(t, jose.EdDSA, k.ed, "ed-1", with(claimsAt(clk.Now()), map[string]any{"exp": clk.Now().Add(time.Minute).Unix()}))
		mustVerify(t, v, tok)
		clk.Advance(time.Minute + 4*time.Second)
		mustVerify(t, v, tok)
		clk.Advance(time.Second)
		_, err := verify(v, tok)
		wantErr(t, err, ErrInvalidToken, ErrExpired)
	})
}

func TestVerifyIssuerAudienceSubject(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, defaultKeys()...)
	clk := newClock()
	v := newVerifier(t, baseConfig(srv.URL), clk)
	for _, tc := range []struct {
		name    string
		changes map[string]any
		reason  error
	}{
		{"wrong issuer", map[string]any{"iss": "https://evil.test"}, ErrIssuer},
		{"issuer with a trailing slash", map[string]any{"iss": testIssuer + "/"}, ErrIssuer},
		{"no issuer", map[string]any{"iss": nil}, ErrIssuer},
		{"issuer a number", map[string]any{"iss": 7}, ErrIssuer},
		{"wrong audience", map[string]any{"aud": "other"}, ErrAudience},
		{"audience array without ours", map[string]any{"aud": []string{"a", "b"}}, ErrAudience},
		{"empty audience array", map[string]any{"aud": []string{}}, ErrAudience},
		{"no audience", map[string]any{"aud": nil}, ErrAudience},
		{"audience array with a number", map[string]any{"aud": []any{testAudience, 1}}, ErrClaims},
		{"audience an object", map[string]any{"aud": map[string]any{"x": testAudience}}, ErrClaims},
		{"subject a number", map[string]any{"sub": 42}, ErrClaims},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verify(v, sign(t, jose.EdDSA, k.ed, "ed-1", with(claimsAt(clk.Now()), tc.changes)))
			wantErr(t, err, ErrInvalidToken, tc.reason)
		})
	}
	t.Run("no subject is fine", func(t *testing.T) {
		id := mustVerify(t, v, sign(t, jose.EdDSA, k.ed, "ed-1", with(claimsAt(clk.Now()), map[string]any{"sub": nil})))
		if _, ok := id.Lookup("sub"); ok {
			t.Fatal(`Lookup("sub") found a subject`)
		}
	})
	t.Run("claims not an object", func(t *testing.T) {
		_, err := verify(v, sign(t, jose.EdDSA, k.ed, "ed-1", []string{"iss"}))
		wantErr(t, err, ErrInvalidToken, ErrMalformed)
	})
}

// TestVerifyAlgorithms covers what a token's "alg" may and may not do.
func TestVerifyAlgorithms(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, defaultKeys()...)
	clk := newClock()
	v := newVerifier(t, baseConfig(srv.URL), clk)
	claims := claimsAt(clk.Now())
	mustVerify(t, v, sign(t, jose.RS256, k.rsa, "rsa-1", claims)) // the key set is loaded

	t.Run("none", func(t *testing.T) {
		for _, alg := range []string{"none", "None", "NONE", ""} {
			tok := rawToken(t, map[string]any{"alg": alg, "kid": "rsa-1"}, claims, nil)
			_, err := verify(v, tok)
			wantErr(t, err, ErrInvalidToken, ErrAlgorithm)
		}
	})
	t.Run("HS256 signed with the RSA public key", func(t *testing.T) {
		// The classic confusion: the verifier's RSA public key bytes used as
		// an HMAC secret. Every form of the key an attacker might pick.
		der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		jwkBytes, err := jwk(k.rsa, "rsa-1", "").MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range [][]byte{der, pemBytes, jwkBytes, x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)} {
			for _, kid := range []string{"rsa-1", ""} {
				tok := sign(t, jose.HS256, secret, kid, claims)
				_, err := verify(v, tok)
				wantErr(t, err, ErrInvalidToken, ErrAlgorithm)
			}
		}
	})
	t.Run("HS256 even when the key set holds an oct key", func(t *testing.T) {
		secret := []byte("0123456789abcdef0123456789abcdef")
		srv := newJWKSServer(t, append(defaultKeys(), jose.JSONWebKey{Key: secret, KeyID: "hmac", Algorithm: "HS256"})...)
		v := newVerifier(t, baseConfig(srv.URL), clk)
		_, err := verify(v, sign(t, jose.HS256, secret, "hmac", claims))
		wantErr(t, err, ErrInvalidToken, ErrAlgorithm)
	})
	t.Run("allowed alg that does not fit the kid's key", func(t *testing.T) {
		// ES256 token naming the RSA key's kid: refused before any math.
		_, err := verify(v, sign(t, jose.ES256, k.ec, "rsa-1", claims))
		wantErr(t, err, ErrInvalidToken, ErrAlgorithm)
		// RS256 token naming the Ed25519 key's kid.
		_, err = verify(v, sign(t, jose.RS256, k.rsa, "ed-1", claims))
		wantErr(t, err, ErrInvalidToken, ErrAlgorithm)
	})
	t.Run("alg differs from the JWK's alg", func(t *testing.T) {
		cfg := baseConfig(srv.URL)
		cfg.Algorithms = []string{"RS256", "PS256"}
		v := newVerifier(t, cfg, clk)
		_, err := verify(v, sign(t, jose.PS256, k.rsa, "rsa-1", claims)) // rsa-1 says RS256
		wantErr(t, err, ErrInvalidToken, ErrAlgorithm)
	})
	t.Run("alg not in the configured list", func(t *testing.T) {
		cfg := baseConfig(srv.URL)
		cfg.Algorithms = []string{"EdDSA"}
		v := newVerifier(t, cfg, clk)
		_, err := verify(v, sign(t, jose.RS256, k.rsa, "rsa-1", claims))
		wantErr(t, err, ErrInvalidToken, ErrAlgorithm)
	})
	t.Run("bad signature", func(t *testing.T) {
		tok := sign(t, jose.EdDSA, k.ed, "ed-1", claims)
		other := sign(t, jose.EdDSA, k.ed, "ed-1", with(claims, map[string]any{"sub": "admin"}))
		parts, otherParts := strings.Split(tok, "."), strings.Split(other, ".")
		forged := parts[0] + "." + otherParts[1] + "." + parts[2] // admin's claims, user-42's signature
		_, err := verify(v, forged)
		wantErr(t, err, ErrInvalidToken, ErrSignature)
		// Signed by a key the set does not hold, under a kid it does.
		_, err = verify(v, sign(t, jose.RS256, k.rsa2, "rsa-1", claims))
		wantErr(t, err, ErrInvalidToken, ErrSignature)
	})
	t.Run("unsupported crit header", func(t *testing.T) {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: k.ed, KeyID: "ed-1"}},
			(&jose.SignerOptions{}).WithHeader("exp-policy", "strict").WithCritical("exp-policy"))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign([]byte(`{"iss":"` + testIssuer + `","aud":"braid","exp":` + strconv.FormatInt(clk.Now().Add(time.Hour).Unix(), 10) + `}`))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		_, err = verify(v, tok)
		wantErr(t, err, ErrInvalidToken, ErrMalformed)
	})
}

func TestVerifyMalformed(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, defaultKeys()...)
	clk := newClock()
	v := newVerifier(t, baseConfig(srv.URL), clk)
	tok := sign(t, jose.EdDSA, k.ed, "ed-1", claimsAt(clk.Now()))
	for _, tc := range []struct {
		name   string
		header string
		kind   error
		reason error // nil: any
	}{
		{"empty", "", ErrMissingToken, nil},
		{"blank", "  ", ErrMissingToken, nil},
		{"basic", "Basic dXNlcjpwYXNz", ErrMissingToken, nil},
		{"scheme glued to token", "Bearer" + tok, ErrMissingToken, nil},
		{"bearer alone", "Bearer", ErrInvalidToken, ErrMalformed},
		{"bearer and spaces", "Bearer   ", ErrInvalidToken, ErrMalformed},
		{"two tokens", "Bearer a b", ErrInvalidToken, ErrMalformed},
		{"token and another", "Bearer " + tok + " " + tok, ErrInvalidToken, ErrMalformed},
		{"comma after", "Bearer " + tok + ",", ErrInvalidToken, ErrMalformed},
		{"padding", "Bearer " + tok + "=", ErrInvalidToken, ErrMalformed},
		{"tab between", "Bearer\t" + tok, ErrMissingToken, nil},
		{"huge", "Bearer " + strings.Repeat("a", MaxTokenBytes), ErrInvalidToken, ErrMalformed},
		{"two parts", "Bearer a.b", ErrInvalidToken, ErrMalformed},
		{"four parts", "Bearer " + tok + ".x", ErrInvalidToken, ErrMalformed},
		{"not base64 header", "Bearer !!!.e30.", ErrInvalidToken, ErrMalformed},
		{"header not JSON", "Bearer bm90IGpzb24.e30.", ErrInvalidToken, ErrMalformed},
		{"JWE (five parts)", "Bearer a.b.c.d.e", ErrInvalidToken, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.header)
			wantErr(t, err, tc.kind, tc.reason)
		})
	}
	t.Run("scheme in any case, several spaces", func(t *testing.T) {
		for _, h := range []string{"bearer " + tok, "BEARER " + tok, "Bearer    " + tok, " Bearer " + tok + " "} {
			if _, err := v.Verify(context.Background(), h); err != nil {
				t.Fatalf("%.20q: %v", h, err)
			}
		}
	})
	t.Run("at the size cap", func(t *testing.T) {
		pad := strings.Repeat("x", (MaxTokenBytes-len("Bearer ")-len(tok))*3/4-20)
		big := sign(t, jose.EdDSA, k.ed, "ed-1", with(claimsAt(clk.Now()), map[string]any{"pad": pad}))
		h := "Bearer " + big
		if len(h) > MaxTokenBytes || len(h) < MaxTokenBytes-100 {
			t.Fatalf("test header of %d bytes is not just under the cap", len(h))
		}
		if _, err := v.Verify(context.Background(), h); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("VerifyRequest", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		_, err := v.VerifyRequest(r)
		wantErr(t, err, ErrMissingToken, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		if _, err := v.VerifyRequest(r); err != nil {
			t.Fatal(err)
		}
		r.Header.Add("Authorization", "Bearer "+tok)
		_, err = v.VerifyRequest(r)
		wantErr(t, err, ErrInvalidToken, ErrMalformed)
	})
}

func TestVerifyScopesAndClaims(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, defaultKeys()...)
	clk := newClock()
	cfg := baseConfig(srv.URL)
	cfg.Scopes = []string{"orders:read", "profile"}
	cfg.RequiredClaims = map[string]string{"tenant": "acme", "org.id": "42"}
	v := newVerifier(t, cfg, clk)
	good := map[string]any{"scope": "profile orders:read email", "tenant": "acme", "org": map[string]any{"id": 42}}
	for _, tc := range []struct {
		name    string
		changes map[string]any
		reason  error // nil: valid
	}{
		{"all present", nil, nil},
		{"scp array", map[string]any{"scope": nil, "scp": []string{"orders:read", "profile"}}, nil},
		{"scp string", map[string]any{"scope": nil, "scp": "orders:read profile"}, nil},
		{"split across scope and scp", map[string]any{"scope": "profile", "scp": []string{"orders:read"}}, nil},
		{"one scope missing", map[string]any{"scope": "profile"}, ErrMissingScope},
		{"no scope at all", map[string]any{"scope": nil}, ErrMissingScope},
		{"scope a prefix", map[string]any{"scope": "profile orders"}, ErrMissingScope},
		{"scope of the wrong type", map[string]any{"scope": []string{"orders:read", "profile"}}, ErrMissingScope},
		{"wrong tenant", map[string]any{"tenant": "other"}, ErrClaimMismatch},
		{"no tenant", map[string]any{"tenant": nil}, ErrClaimMismatch},
		{"org.id as a string", map[string]any{"org": map[string]any{"id": "42"}}, nil},
		{"org.id wrong", map[string]any{"org": map[string]any{"id": 43}}, ErrClaimMismatch},
		{"org an array", map[string]any{"org": []int{42}}, ErrClaimMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := with(with(claimsAt(clk.Now()), good), tc.changes)
			_, err := verify(v, sign(t, jose.EdDSA, k.ed, "ed-1", c))
			if tc.reason == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			wantErr(t, err, ErrForbidden, tc.reason)
		})
	}
	t.Run("an invalid token is 401 before any scope check", func(t *testing.T) {
		c := with(with(claimsAt(clk.Now()), good), map[string]any{"scope": nil, "iss": "x"})
		_, err := verify(v, sign(t, jose.EdDSA, k.ed, "ed-1", c))
		wantErr(t, err, ErrInvalidToken, ErrIssuer)
	})
}

// TestJWKSFile reads keys from a file: no server, no fetch.
func TestJWKSFile(t *testing.T) {
	k := keysOnce()
	dir := t.TempDir()
	path := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(path, keySetJSON(t, defaultKeys()...), 0o600); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	v := newVerifier(t, Config{Issuer: testIssuer, Audiences: []string{testAudience}, JWKSFile: path}, clk)
	mustVerify(t, v, sign(t, jose.RS256, k.rsa, "rsa-1", claimsAt(clk.Now())))
	clk.Advance(24 * time.Hour) // older than any refresh interval: still served
	mustVerify(t, v, sign(t, jose.RS256, k.rsa, "rsa-1", claimsAt(clk.Now())))
	_, err := verify(v, sign(t, jose.RS256, k.rsa2, "rsa-2", claimsAt(clk.Now())))
	wantErr(t, err, ErrInvalidToken, ErrUnknownKey)

	for _, tc := range []struct {
		name, path string
		content    []byte
	}{
		{"missing", filepath.Join(dir, "nope.json"), nil},
		{"not a key set", filepath.Join(dir, "bad.json"), []byte(`<html>`)},
		{"no usable key", filepath.Join(dir, "empty.json"), []byte(`{"keys":[]}`)},
		{"too large", filepath.Join(dir, "large.json"), []byte(`{"keys":[],"pad":"` + strings.Repeat("x", maxKeySetBytes) + `"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.content != nil {
				if err := os.WriteFile(tc.path, tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := New(Config{Issuer: testIssuer, Audiences: []string{testAudience}, JWKSFile: tc.path})
			if err == nil || !strings.HasPrefix(err.Error(), "jwks_file: ") {
				t.Fatalf("New: %v, want an error naming jwks_file", err)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	_, err := New(Config{Issuer: testIssuer, JWKSURL: "http://x"})
	if err == nil || !strings.Contains(err.Error(), "audiences:") {
		t.Fatalf("New: %v", err)
	}
}

func TestErrorTypedNil(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, defaultKeys()...)
	clk := newClock()
	v := newVerifier(t, baseConfig(srv.URL), clk)
	_, err := verify(v, sign(t, jose.EdDSA, k.ed, "ed-1", claimsAt(clk.Now())))
	if err != nil {
		t.Fatalf("a valid token gave a non-nil error %#v", err)
	}
	var ae *Error
	if errors.As(err, &ae) {
		t.Fatal("nil error matched *Error")
	}
}
