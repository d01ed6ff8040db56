package demo

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/braidgw/braid/auth"
)

// The demo identity provider. Every demo service publishes the demo
// issuer's public key at GET /.well-known/jwks.json and mints tokens at
// GET /_demo/token?sub=7 (plain text), so that the gateway's /api/me/...
// routes can be tried with a real signed token. The signing key is derived
// from a fixed, published phrase: it is NOT a secret, and tokens it signs
// prove nothing outside the demo.
const (
	// TokenIssuer and TokenAudience are the iss and aud of demo tokens;
	// gateway.yaml's /api/me/... routes accept exactly these.
	TokenIssuer   = "braid-demo"
	TokenAudience = "braid-gateway"
	// TokenTTL is how long a minted demo token is valid.
	TokenTTL = time.Hour
	// JWKSPath is where every demo service serves the public key set.
	JWKSPath = "/.well-known/jwks.json"

	tokenKeyID = "braid-demo-1"
	seedPhrase = "braid demo token signing key: public, for demos only"
)

// Issuer is the demo token issuer, the same in every process.
var Issuer = sync.OnceValue(func() *auth.Issuer {
	seed := sha256.Sum256([]byte(seedPhrase))
	iss, err := auth.NewDemoIssuer(seed[:], TokenIssuer, TokenAudience, tokenKeyID)
	if err != nil {
		panic(err) // unreachable: the seed, issuer, audience and kid are fixed and valid
	}
	return iss
})

// validSub is what a demo token's subject may be.
var validSub = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// TokenHandler answers GET ?sub=N with a demo token for subject N, as
// plain text, valid for TokenTTL.
func TokenHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub := r.URL.Query().Get("sub")
		if !validSub.MatchString(sub) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("sub %q: give the user id the token is for, e.g. ?sub=7 (1-64 letters, digits, _ or -)", sub))
			return
		}
		tok, err := Issuer().Mint(sub, TokenTTL, map[string]any{"scope": "profile orders"})
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte(tok + "\n"))
	})
}

// jwksHandler serves the demo issuer's public key set.
func jwksHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(Issuer().JWKS())
}
