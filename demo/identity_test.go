package demo

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/braidgw/braid/auth"
)

// TestDemoTokens: a token minted at /_demo/token verifies against the JWKS
// the demo services publish, for the subject asked; a bad subject is a
// 400; faults do not reach either endpoint.
func TestDemoTokens(t *testing.T) {
	s := newTestService(t, "users", ServiceOptions{Faults: Faults{Down: true}})
	srv := httptest.NewServer(s)
	defer srv.Close()

	tok := get(t, s, "/_demo/token?sub=7")
	wantStatus(t, tok, http.StatusOK)
	if tok.ctype != "text/plain; charset=utf-8" {
		t.Errorf("token Content-Type = %q", tok.ctype)
	}
	v, err := auth.New(auth.Config{Issuer: TokenIssuer, Audiences: []string{TokenAudience}, JWKSURL: srv.URL + JWKSPath})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	id, err := v.Verify(t.Context(), "Bearer "+strings.TrimSpace(tok.body))
	if err != nil {
		t.Fatalf("demo token refused: %v", err)
	}
	if id.Subject != "7" {
		t.Errorf("sub = %q, want 7", id.Subject)
	}
	for _, bad := range []string{"", "a%20b", strings.Repeat("x", 65), "..%2F"} {
		wantError(t, get(t, s, "/_demo/token?sub="+bad), http.StatusBadRequest, "sub")
	}
	if st := s.Stats(); st.Requests != 0 {
		t.Errorf("demo endpoints counted %d requests, want 0", st.Requests)
	}
}
