package auth_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/braidgw/braid/auth"
)

// A demo issuer's key set served over HTTP, a Verifier pointed at it, and
// the three outcomes a route maps to statuses and challenges.
func Example() {
	seed := sha256.Sum256([]byte("braid-demo")) // demo only: anyone knowing it can mint tokens
	issuer, err := auth.NewDemoIssuer(seed[:], "https://demo.braid", "braid", "demo-1")
	if err != nil {
		panic(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(issuer.JWKS())
	}))
	defer jwks.Close()

	v, err := auth.New(auth.Config{
		Issuer:    "https://demo.braid",
		Audiences: []string{"braid"},
		JWKSURL:   jwks.URL,
		Scopes:    []string{"orders:read"},
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()

	ok, _ := issuer.Mint("user-42", time.Minute, map[string]any{"scope": "orders:read", "tenant": "acme"})
	noScope, _ := issuer.Mint("user-42", time.Minute, nil)
	for _, header := range []string{"Bearer " + ok, "Bearer " + noScope, ""} {
		id, err := v.Verify(context.Background(), header)
		var ae *auth.Error
		switch {
		case err == nil:
			tenant, _ := id.Lookup("claims.tenant")
			fmt.Println("200", id.Subject, tenant)
		case errors.Is(err, auth.ErrForbidden) && errors.As(err, &ae):
			fmt.Println("403", ae.Challenge())
		case errors.As(err, &ae):
			fmt.Println("401", ae.Challenge())
		}
	}
	// Output:
	// 200 user-42 acme
	// 403 Bearer realm="braid", error="insufficient_scope", error_description="token lacks a required scope", scope="orders:read"
	// 401 Bearer realm="braid"
}
