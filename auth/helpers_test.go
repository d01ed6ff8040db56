package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	testIssuer   = "https://idp.test"
	testAudience = "braid"
)

// epoch is the fake clock's start.
var epoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testKeys are generated once per test binary: RSA generation is slow.
type testKeys struct {
	rsa  *rsa.PrivateKey
	rsa2 *rsa.PrivateKey // a second RSA key, for rotation
	ec   *ecdsa.PrivateKey
	ed   ed25519.PrivateKey
}

var keysOnce = sync.OnceValue(func() *testKeys {
	k := &testKeys{}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		panic(err)
	}
	return k
})

// jwk is the public JWK of priv under kid, with alg when it is not "".
func jwk(priv any, kid, alg string) jose.JSONWebKey {
	var pub any
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		pub = &k.PublicKey
	case *ecdsa.PrivateKey:
		pub = &k.PublicKey
	case ed25519.PrivateKey:
		pub = k.Public()
	default:
		pub = priv
	}
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"}
}

// keySetJSON marshals a JSON Web Key Set.
func keySetJSON(t testing.TB, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// defaultKeys is the usual key set: the RSA, EC and Ed25519 keys.
func defaultKeys() []jose.JSONWebKey {
	k := keysOnce()
	return []jose.JSONWebKey{jwk(k.rsa, "rsa-1", "RS256"), jwk(k.ec, "ec-1", "ES256"), jwk(k.ed, "ed-1", "EdDSA")}
}

// claimsAt are valid claims for a token issued at now, valid for an hour.
func claimsAt(now time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": "user-42",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// with returns a copy of claims with the changes applied; a nil value
// deletes the claim.
func with(claims map[string]any, changes map[string]any) map[string]any {
	out := make(map[string]any, len(claims)+len(changes))
	for k, v := range claims {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// sign returns a compact token of claims signed with priv using alg, with
// kid in its header when it is not "".
func sign(t testing.TB, alg jose.SignatureAlgorithm, priv any, kid string, claims any) string {
	t.Helper()
	key := any(priv)
	if kid != "" {
		key = jose.JSONWebKey{Key: priv, KeyID: kid}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// rawToken assembles a token from a header, claims and signature bytes,
// for tokens no signer would make.
func rawToken(t testing.TB, header, claims any, sig []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// clock is a fake clock that moves only when told.
type clock struct {
	mu sync.Mutex // guards t
	t  time.Time
}

func newClock() *clock { return &clock{t: epoch} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// jwksServer serves a key set that tests can change or break, counting
// the requests it gets.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int64

	mu     sync.Mutex // guards the fields below
	body   []byte
	status int
	hold   chan struct{} // when non-nil, requests wait for it to close
	held   chan struct{} // gets a value for each request that waits
}

func newJWKSServer(t testing.TB, keys ...jose.JSONWebKey) *jwksServer {
	t.Helper()
	s := &jwksServer{body: keySetJSON(t, keys...), status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	body, status, hold, held := s.body, s.status, s.hold, s.held
	s.mu.Unlock()
	if hold != nil {
		select {
		case held <- struct{}{}:
		default:
		}
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// newHTTPServer starts a test server closed at the end of the test.
func newHTTPServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// set makes the server answer 200 with these keys.
func (s *jwksServer) set(t testing.TB, keys ...jose.JSONWebKey) {
	s.answer(http.StatusOK, keySetJSON(t, keys...))
}

// answer makes the server answer status with body.
func (s *jwksServer) answer(status int, body []byte) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

// holdRequests makes requests wait until release is called; held gets a
// value as each request starts waiting.
func (s *jwksServer) holdRequests() (held <-chan struct{}, release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.hold, s.held = ch, make(chan struct{}, 16)
	held = s.held
	s.mu.Unlock()
	var once sync.Once
	return held, func() {
		once.Do(func() {
			s.mu.Lock()
			s.hold = nil
			s.mu.Unlock()
			close(ch)
		})
	}
}

// baseConfig is a valid Config fetching keys from url.
func baseConfig(url string) Config {
	return Config{Issuer: testIssuer, Audiences: []string{testAudience}, JWKSURL: url}
}

// newVerifier builds a Verifier on the fake clock, closed at the end of
// the test (before the servers it uses, which were registered earlier).
func newVerifier(t testing.TB, cfg Config, clk *clock, opts ...Option) *Verifier {
	t.Helper()
	v, err := New(cfg, append([]Option{WithClock(clk.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// waitFetch waits for the Verifier's fetch in flight, if any.
func waitFetch(v *Verifier) {
	v.keys.mu.Lock()
	f := v.keys.inflight
	v.keys.mu.Unlock()
	if f != nil {
		<-f.done
	}
}

// verify calls Verify with a "Bearer" header.
func verify(v *Verifier, token string) (*Identity, error) {
	return v.Verify(context.Background(), "Bearer "+token)
}

// mustVerify fails the test unless token verifies.
func mustVerify(t testing.TB, v *Verifier, token string) *Identity {
	t.Helper()
	id, err := verify(v, token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return id
}

// wantErr fails the test unless err matches kind and reason.
func wantErr(t testing.TB, err, kind, reason error) {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify succeeded, want %v: %v", kind, reason)
	}
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if !errors.Is(err, kind) || (reason != nil && !errors.Is(err, reason)) {
		t.Fatalf("error %q, want %v: %v", err, kind, reason)
	}
}

// logRecorder is a slog.Handler keeping the records it gets.
type logRecorder struct {
	mu      sync.Mutex // guards records
	records []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.records = append(l.records, r)
	l.mu.Unlock()
	return nil
}

// count returns how many records were logged at level.
func (l *logRecorder) count(level slog.Level) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		if r.Level == level {
			n++
		}
	}
	return n
}
