package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxKeySetBytes caps a key set document: 1 MiB.
const maxKeySetBytes = 1 << 20

// maxCandidates caps the keys one token is checked against: those fitting
// its alg when it has no kid, or sharing its kid.
const maxCandidates = 3

// jwks is the key set of one Verifier: read once from a file, or fetched
// from a URL, cached, and fetched again
//
//   - in the background when a verification finds it older than refresh;
//   - on a "kid" the set lacks, the verification waiting for the result;
//
// never more than once per minRefetch, and one fetch at a time: concurrent
// verifications share the fetch in flight. A failed fetch leaves the keys
// at hand in use, however old, and is logged once per streak of failures.
// Fetches run under a context of their own, bounded by the fetch timeout
// and cancelled by close; the caller of a verification only stops waiting.
type jwks struct {
	url        string // "" for a key set read from a file: never fetched
	client     *http.Client
	ownClient  bool // client was made here: close its idle connections
	timeout    time.Duration
	refresh    time.Duration
	minRefetch time.Duration
	now        func() time.Time
	log        *slog.Logger

	set atomic.Pointer[keySet] // nil until a fetch succeeds
	// nextStart is when a fetch may next start (Unix ns), read without
	// j.mu so that verifications against a stale set do not contend on it
	// while an issuer is down.
	nextStart atomic.Int64

	ctx    context.Context // parent of every fetch; cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup // counts fetch goroutines

	mu        sync.Mutex // guards the fields below
	closed    bool
	inflight  *flight   // the fetch in progress, or nil
	lastStart time.Time // when the last fetch started; zero if none has
	lastErr   error     // the last fetch's error; nil after a success
	skipped   int       // keys the last good set skipped, to log changes only
}

// flight is one fetch; done is closed when it ends, err is then set.
type flight struct {
	done chan struct{}
	err  error
}

// start begins a fetch unless one is in flight (which it returns instead)
// or the last began within minRefetch, or the set is never fetched or
// closed (it returns nil then).
func (j *jwks) start() *flight {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.inflight != nil {
		return j.inflight
	}
	now := j.now()
	if j.url == "" || j.closed || (!j.lastStart.IsZero() && now.Sub(j.lastStart) < j.minRefetch) {
		return nil
	}
	f := &flight{done: make(chan struct{})}
	j.inflight, j.lastStart = f, now
	j.nextStart.Store(now.Add(j.minRefetch).UnixNano())
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		err := j.fetch()
		j.mu.Lock()
		j.inflight = nil
		j.finished(err)
		j.mu.Unlock()
		f.err = err
		close(f.done)
	}()
	return f
}

// finished records a fetch's outcome and logs the first failure of a
// streak and the recovery that ends it. The caller holds j.mu.
func (j *jwks) finished(err error) {
	switch {
	case err != nil && j.lastErr == nil:
		stale := "no keys yet: tokens are refused"
		if j.set.Load() != nil {
			stale = "keeping the cached keys"
		}
		j.log.Warn("auth: JWKS fetch failed; "+stale, "url", j.url, "error", err,
			"retry_after", j.minRefetch)
	case err == nil && j.lastErr != nil:
		j.log.Info("auth: JWKS fetch succeeded again", "url", j.url)
	}
	j.lastErr = err
}

// keys returns the keys that may verify a token with kid and alg, or an
// ErrInvalidToken *Error: ErrUnknownKey, ErrAlgorithm or
// ErrKeysUnavailable.
func (j *jwks) keys(ctx context.Context, kid, alg string) ([]*key, *Error) {
	set := j.set.Load()
	if set != nil {
		if now := j.now(); now.Sub(set.fetched) >= j.refresh && now.UnixNano() >= j.nextStart.Load() {
			j.start() // in the background; the keys at hand serve meanwhile
		}
		if keys, known := set.candidates(kid, alg); len(keys) > 0 || known {
			return keysOrMismatch(keys, kid, alg)
		}
	}
	// No keys yet, or kid is not in the set: it may have been rotated in.
	if f := j.start(); f != nil {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, invalid(ErrKeysUnavailable, "gave up waiting for the key set: "+ctx.Err().Error())
		}
	}
	if set = j.set.Load(); set == nil {
		j.mu.Lock()
		err := j.lastErr
		j.mu.Unlock()
		detail := "no key set fetched yet"
		if err != nil {
			detail += ": " + err.Error()
		}
		return nil, invalid(ErrKeysUnavailable, detail)
	}
	keys, known := set.candidates(kid, alg)
	if len(keys) == 0 && !known {
		if kid == "" {
			return nil, invalid(ErrUnknownKey, "token has no kid and no key fits "+alg)
		}
		return nil, invalid(ErrUnknownKey, fmt.Sprintf("kid %q is not in the key set", short(kid)))
	}
	return keysOrMismatch(keys, kid, alg)
}

// keysOrMismatch returns keys, or an ErrAlgorithm error when kid names
// keys that none fits alg, or an ErrUnknownKey error when more than
// maxCandidates fit: each costs a signature check, so a token without a
// kid may not make the verifier try a large key set.
func keysOrMismatch(keys []*key, kid, alg string) ([]*key, *Error) {
	switch {
	case len(keys) == 0:
		return nil, invalid(ErrAlgorithm, fmt.Sprintf("key %q does not fit alg %s", short(kid), alg))
	case len(keys) > maxCandidates:
		return nil, invalid(ErrUnknownKey, fmt.Sprintf("%d keys fit kid %q and alg %s; at most %d are tried", len(keys), short(kid), alg, maxCandidates))
	}
	return keys, nil
}

// fetch gets and parses the key set, and stores it on success.
func (j *jwks) fetch() error {
	ctx, cancel := context.WithTimeout(j.ctx, j.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return fmt.Errorf("JWKS answered status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetBytes+1))
	if err != nil {
		return fmt.Errorf("reading the JWKS: %w", err)
	}
	if len(body) > maxKeySetBytes {
		return fmt.Errorf("JWKS exceeds %d bytes", maxKeySetBytes)
	}
	set, skipped, err := parseKeySet(body)
	if err != nil {
		return err
	}
	set.fetched = j.now()
	j.set.Store(set)
	j.logSkipped(skipped)
	return nil
}

// logSkipped logs the keys a fetched set skipped, when their number
// changes: once per key set, not once per refresh.
func (j *jwks) logSkipped(skipped []string) {
	j.mu.Lock()
	changed := len(skipped) != j.skipped
	j.skipped = len(skipped)
	j.mu.Unlock()
	if changed && len(skipped) > 0 {
		j.log.Warn("auth: JWKS keys skipped", "url", j.url, "keys", strings.Join(skipped, "; "))
	}
}

// close stops fetching and waits for a fetch in flight to end.
func (j *jwks) close() {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.cancel()
	j.wg.Wait()
	if j.ownClient {
		j.client.CloseIdleConnections()
	}
}

// newFetchClient returns the client used for key sets when none is given:
// its own transport (no proxy from the environment), TLS 1.2 or later,
// and redirects followed only within http(s), never from https to http.
func newFetchClient(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			MaxIdleConns:          2,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: checkRedirect,
	}
}

// checkRedirect allows at most 3 redirects and none from https to http.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return errors.New("JWKS: too many redirects")
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return errors.New("JWKS: refusing a redirect from https to " + req.URL.Scheme)
	}
	return nil
}
