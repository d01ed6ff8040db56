package auth

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TestUnknownKidRefetch: a kid the set lacks causes exactly one fetch,
// then 401; another unknown kid within MinRefetchInterval causes none.
func TestUnknownKidRefetch(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, defaultKeys()...)
	clk := newClock()
	v := newVerifier(t, baseConfig(srv.URL), clk)
	claims := claimsAt(clk.Now())
	mustVerify(t, v, sign(t, jose.EdDSA, k.ed, "ed-1", claims))
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("JWKS requests after the first token = %d, want 1", n)
	}

	clk.Advance(defaultMinRefetchInterval)
	_, err := verify(v, sign(t, jose.EdDSA, k.ed, "ed-unknown", claims))
	wantErr(t, err, ErrInvalidToken, ErrUnknownKey)
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS requests after an unknown kid = %d, want 2 (one refetch)", n)
	}

	clk.Advance(defaultMinRefetchInterval - time.Millisecond)
	for _, kid := range []string{"other-unknown", "ed-unknown", "third"} {
		_, err = verify(v, sign(t, jose.EdDSA, k.ed, kid, claims))
		wantErr(t, err, ErrInvalidToken, ErrUnknownKey)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS requests after unknown kids within min_refetch_interval = %d, want still 2", n)
	}
	mustVerify(t, v, sign(t, jose.EdDSA, k.ed, "ed-1", claims)) // known kids are unaffected

	clk.Advance(time.Millisecond)
	_, err = verify(v, sign(t, jose.EdDSA, k.ed, "ed-unknown", claims))
	wantErr(t, err, ErrInvalidToken, ErrUnknownKey)
	if n := srv.hits.Load(); n != 3 {
		t.Fatalf("JWKS requests once min_refetch_interval passed = %d, want 3", n)
	}
}

// TestKeyRotation: a new kid published in the set is found by the refetch
// its first token causes; a key removed from the set stops working once
// the set is refreshed.
func TestKeyRotation(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, jwk(k.rsa, "2026-01", "RS256"))
	clk := newClock()
	v := newVerifier(t, baseConfig(srv.URL), clk)
	oldTok := sign(t, jose.RS256, k.rsa, "2026-01", claimsAt(clk.Now()))
	mustVerify(t, v, oldTok)

	srv.set(t, jwk(k.rsa, "2026-01", "RS256"), jwk(k.rsa2, "2026-02", "RS256"))
	clk.Advance(time.Minute)
	newTok := sign(t, jose.RS256, k.rsa2, "2026-02", claimsAt(clk.Now()))
	mustVerify(t, v, newTok)
	mustVerify(t, v, oldTok)
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS requests = %d, want 2", n)
	}

	// The old key is retired; the cached set keeps it until a refresh.
	srv.set(t, jwk(k.rsa2, "2026-02", "RS256"))
	mustVerify(t, v, oldTok)
	clk.Advance(defaultRefreshInterval)
	mustVerify(t, v, newTok) // starts the refresh in the background
	waitFetch(v)
	if n := srv.hits.Load(); n != 3 {
		t.Fatalf("JWKS requests after the refresh interval = %d, want 3", n)
	}
	_, err := verify(v, oldTok)
	wantErr(t, err, ErrInvalidToken, ErrUnknownKey)
	mustVerify(t, v, newTok)
}

// TestConcurrentMissesShareOneFetch: requests that miss while a fetch is in
// flight wait for it rather than starting their own, and all see its keys.
func TestConcurrentMissesShareOneFetch(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, jwk(k.ed, "ed-1", "EdDSA"))
	clk := newClock()
	v := newVerifier(t, baseConfig(srv.URL), clk)
	mustVerify(t, v, sign(t, jose.EdDSA, k.ed, "ed-1", claimsAt(clk.Now())))

	held, release := srv.holdRequests()
	defer release()
	srv.set(t, jwk(k.ed, "ed-1", "EdDSA"), jwk(k.ec, "ec-2", "ES256"))
	clk.Advance(defaultMinRefetchInterval)
	tok := sign(t, jose.ES256, k.ec, "ec-2", claimsAt(clk.Now()))

	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = verify(v, tok) })
	}
	// Release the fetch once it reaches the server; the other requests
	// have joined it or, coming after, find the key it fetched.
	<-held
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("JWKS requests = %d, want 2 (the first and one shared refetch)", got)
	}
}

// TestJWKSDownKeepsCachedKeys: once keys are cached, an issuer that fails
// (error status, garbage, an empty set, a refused connection) does not
// stop verification; the failure is logged once per streak.
func TestJWKSDownKeepsCachedKeys(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, defaultKeys()...)
	clk := newClock()
	logs := &logRecorder{}
	v := newVerifier(t, baseConfig(srv.URL), clk, WithLogger(slog.New(logs)))
	tok := func() string { return sign(t, jose.RS256, k.rsa, "rsa-1", claimsAt(clk.Now())) }
	mustVerify(t, v, tok())

	failures := []struct {
		status int
		body   string
	}{
		{http.StatusInternalServerError, `oops`},
		{http.StatusOK, `<html>not json</html>`},
		{http.StatusOK, `{"keys":[]}`},
		{http.StatusOK, `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`},
		{http.StatusNotFound, ``},
		{http.StatusOK, `{"keys":[]}` + strings.Repeat(" ", maxKeySetBytes)},
	}
	hits := srv.hits.Load()
	for i, f := range failures {
		srv.answer(f.status, []byte(f.body))
		if i == 0 {
			clk.Advance(defaultRefreshInterval)
		} else {
			clk.Advance(defaultMinRefetchInterval)
		}
		mustVerify(t, v, tok()) // starts a refresh, which fails
		waitFetch(v)
		mustVerify(t, v, tok()) // cached keys still serve
		if got := srv.hits.Load(); got != hits+1 {
			t.Fatalf("failure %d: JWKS requests = %d, want %d", i, got, hits+1)
		}
		hits++
		// An unknown kid within min_refetch_interval of the failure: no fetch.
		_, err := verify(v, sign(t, jose.RS256, k.rsa, "new", claimsAt(clk.Now())))
		wantErr(t, err, ErrInvalidToken, ErrUnknownKey)
		if got := srv.hits.Load(); got != hits {
			t.Fatalf("failure %d: an unknown kid fetched again within min_refetch_interval", i)
		}
	}
	if n := logs.count(slog.LevelWarn); n != 1 {
		t.Fatalf("warnings logged over one streak of %d failures = %d, want 1", len(failures), n)
	}

	// Recovery is logged; a new streak is warned of again.
	srv.set(t, defaultKeys()...)
	clk.Advance(defaultMinRefetchInterval)
	mustVerify(t, v, tok())
	waitFetch(v)
	if n := logs.count(slog.LevelInfo); n != 1 {
		t.Fatalf("recoveries logged = %d, want 1", n)
	}
	srv.answer(http.StatusBadGateway, nil)
	clk.Advance(defaultRefreshInterval)
	mustVerify(t, v, tok())
	waitFetch(v)
	if n := logs.count(slog.LevelWarn); n != 2 {
		t.Fatalf("warnings after a second streak = %d, want 2", n)
	}

	// The issuer gone altogether: connection refused.
	srv.Close()
	clk.Advance(defaultRefreshInterval)
	mustVerify(t, v, tok())
	waitFetch(v)
	mustVerify(t, v, tok())
}

// TestFirstFetchFails: New succeeds without keys; tokens are refused with
// ErrKeysUnavailable, retried once per MinRefetchInterval, until the
// issuer answers.
func TestFirstFetchFails(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, defaultKeys()...)
	srv.answer(http.StatusServiceUnavailable, []byte("starting"))
	clk := newClock()
	v := newVerifier(t, baseConfig(srv.URL), clk)
	tok := sign(t, jose.EdDSA, k.ed, "ed-1", claimsAt(clk.Now()))

	_, err := verify(v, tok) // waits for the first fetch, which fails
	wantErr(t, err, ErrInvalidToken, ErrKeysUnavailable)
	if !strings.Contains(err.Error(), "status 503") {
		t.Fatalf("error %q does not say why", err)
	}
	_, err = verify(v, tok)
	wantErr(t, err, ErrInvalidToken, ErrKeysUnavailable)
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("JWKS requests = %d, want 1 within min_refetch_interval", n)
	}
	var ae *Error
	if errors.As(err, &ae); ae.Challenge() != `Bearer realm="braid", error="invalid_token", error_description="signing keys are unavailable"` {
		t.Fatalf("challenge = %s", ae.Challenge())
	}

	srv.set(t, defaultKeys()...)
	clk.Advance(defaultMinRefetchInterval)
	mustVerify(t, v, tok)
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("JWKS requests = %d, want 2", n)
	}
}

func TestFirstFetchUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // a closed port: connection refused
	clk := newClock()
	v := newVerifier(t, baseConfig("http://"+addr+"/jwks"), clk)
	_, err = verify(v, sign(t, jose.EdDSA, keysOnce().ed, "ed-1", claimsAt(clk.Now())))
	wantErr(t, err, ErrInvalidToken, ErrKeysUnavailable)
}

// TestFetchBounded: a fetch that hangs ends at FetchTimeout, and a request
// waiting for it stops at its own context.
func TestFetchBounded(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, defaultKeys()...)
	_, release := srv.holdRequests()
	defer release()
	clk := newClock()
	cfg := baseConfig(srv.URL)
	cfg.FetchTimeout = 20 * time.Millisecond
	v := newVerifier(t, cfg, clk)
	tok := sign(t, jose.EdDSA, k.ed, "ed-1", claimsAt(clk.Now()))
	_, err := verify(v, tok)
	wantErr(t, err, ErrInvalidToken, ErrKeysUnavailable)
	if msg := err.Error(); !strings.Contains(msg, "deadline exceeded") && !strings.Contains(msg, "timeout") {
		t.Fatalf("error %q does not name the timeout", err)
	}

	// A request that gives up waiting.
	cfg.FetchTimeout = time.Minute
	v = newVerifier(t, cfg, clk)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = v.Verify(ctx, "Bearer "+tok)
	wantErr(t, err, ErrInvalidToken, ErrKeysUnavailable)
}

// TestCloseStopsFetch: Close cancels a fetch in flight and waits for it
// (goleak in TestMain checks that nothing is left).
func TestCloseStopsFetch(t *testing.T) {
	srv := newJWKSServer(t, defaultKeys()...)
	held, release := srv.holdRequests()
	defer release()
	cfg := baseConfig(srv.URL)
	cfg.FetchTimeout = time.Minute
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	<-held // the first fetch is at the server, which does not answer
	v.Close()
	v.keys.mu.Lock()
	inflight := v.keys.inflight
	v.keys.mu.Unlock()
	if inflight != nil {
		t.Fatal("a fetch is still in flight after Close")
	}
	v.Close() // idempotent
	// After Close nothing is fetched.
	_, err = verify(v, sign(t, jose.EdDSA, keysOnce().ed, "ed-1", claimsAt(time.Now())))
	wantErr(t, err, ErrInvalidToken, ErrKeysUnavailable)
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("JWKS requests = %d, want 1", n)
	}
}

func TestRedirects(t *testing.T) {
	k := keysOnce()
	srv := newJWKSServer(t, defaultKeys()...)
	mux := http.NewServeMux()
	mux.Handle("/jwks", http.RedirectHandler(srv.URL, http.StatusFound))
	redirector := newHTTPServer(t, mux)
	clk := newClock()
	v := newVerifier(t, baseConfig(redirector.URL+"/jwks"), clk)
	mustVerify(t, v, sign(t, jose.EdDSA, k.ed, "ed-1", claimsAt(clk.Now())))

	req, _ := http.NewRequest(http.MethodGet, "http://idp/", nil)
	via, _ := http.NewRequest(http.MethodGet, "https://idp/", nil)
	if checkRedirect(req, []*http.Request{via}) == nil {
		t.Fatal("a redirect from https to http was allowed")
	}
}
