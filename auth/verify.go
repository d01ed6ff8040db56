package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Verifier checks bearer tokens against one Config. It is safe for
// concurrent use; Close it when done.
type Verifier struct {
	issuer    string
	audiences []string
	algs      []jose.SignatureAlgorithm
	skew      time.Duration
	scopes    []string
	required  []requiredClaim // sorted by path
	now       func() time.Time
	keys      *jwks
	verified  *verifiedCache // tokens that passed, see verified.go
	checked   atomic.Int64   // tokens checked in full (signature and claims), for tests
}

// requiredClaim is one entry of Config.RequiredClaims.
type requiredClaim struct{ path, want string }

// Option configures New.
type Option func(*options)

type options struct {
	now    func() time.Time
	client *http.Client
	log    *slog.Logger
}

// WithClock makes the Verifier read the time from now instead of
// time.Now, for the token's time claims and the key set's age.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithHTTPClient makes the Verifier fetch the key set with c (for a proxy,
// custom CAs or tests). By default it uses a client of its own, with its
// own transport and no proxy. Close does not close c's connections.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithLogger makes the Verifier log key set failures, recoveries and
// skipped keys to l. By default they are discarded.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// New validates cfg and returns a Verifier for it. With JWKSFile, the file
// is read and parsed now, and a problem with it is an error. With JWKSURL,
// the first fetch starts in the background and its failure is not an
// error: Verify refuses tokens with ErrKeysUnavailable until a fetch
// succeeds, retrying at most once per MinRefetchInterval.
func New(cfg Config, opts ...Option) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{
		issuer:    cfg.Issuer,
		audiences: slices.Clone(cfg.Audiences),
		skew:      cfg.ClockSkew,
		scopes:    slices.Clone(cfg.Scopes),
		now:       o.now,
		verified:  newVerifiedCache(),
	}
	for _, a := range cfg.Algorithms {
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	for path, want := range cfg.RequiredClaims {
		v.required = append(v.required, requiredClaim{path, want})
	}
	slices.SortFunc(v.required, func(a, b requiredClaim) int { return strings.Compare(a.path, b.path) })

	j := &jwks{
		url: cfg.JWKSURL, client: o.client, timeout: cfg.FetchTimeout, refresh: cfg.RefreshInterval,
		minRefetch: cfg.MinRefetchInterval, now: o.now, log: o.log,
	}
	if cfg.JWKSFile != "" {
		set, skipped, err := readKeySetFile(cfg.JWKSFile)
		if err != nil {
			return nil, err
		}
		if len(skipped) > 0 {
			o.log.Warn("auth: JWKS keys skipped", "file", cfg.JWKSFile, "keys", strings.Join(skipped, "; "))
		}
		set.fetched = o.now()
		j.set.Store(set)
		j.nextStart.Store(math.MaxInt64) // never fetched
	}
	j.ctx, j.cancel = context.WithCancel(context.Background())
	if j.url != "" {
		if j.client == nil {
			j.client, j.ownClient = newFetchClient(cfg.FetchTimeout), true
		}
		j.start() // warm the cache before the first request
	}
	v.keys = j
	return v, nil
}

// readKeySetFile reads and parses Config.JWKSFile.
func readKeySetFile(path string) (*keySet, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("jwks_file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeySetBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("jwks_file: %w", err)
	}
	if len(data) > maxKeySetBytes {
		return nil, nil, fmt.Errorf("jwks_file: %s exceeds %d bytes", path, maxKeySetBytes)
	}
	set, skipped, err := parseKeySet(data)
	if err != nil {
		return nil, nil, fmt.Errorf("jwks_file: %s: %w", path, err)
	}
	return set, skipped, nil
}

// Close stops the Verifier's key set fetching and waits for a fetch in
// flight to end; no goroutine of the Verifier outlives it. Verify keeps
// working afterwards with the keys at hand, without fetching.
func (v *Verifier) Close() { v.keys.close() }

// VerifyRequest verifies the bearer token of r's Authorization header, as
// Verify does, and refuses a request with more than one such header.
func (v *Verifier) VerifyRequest(r *http.Request) (*Identity, error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return nil, &Error{Err: ErrMissingToken}
	case 1:
		return v.Verify(r.Context(), values[0])
	}
	return nil, invalid(ErrMalformed, "more than one Authorization header")
}

// Verify checks the bearer token in authorization, the value of an
// Authorization header, and returns who it identifies. Every error is an
// *Error: ErrMissingToken when there is no bearer token, ErrInvalidToken
// (401) when the token is refused, with its Reason, or ErrForbidden (403)
// when it is valid but lacks a required scope or claim value.
//
// The token is checked in this order: the header's form and size; the
// "alg" header against Config.Algorithms; the key, by "kid", which must
// fit the alg (type, curve, and the key's own "alg" if it has one; a
// token without kid is tried against the keys fitting its alg, at most
// 3); the signature; then the claims: "exp" (required), "nbf" and "iat" against
// the clock with Config.ClockSkew, "iss", "aud"; then scopes and required
// claims. ctx bounds only the wait for a key set fetch. A token that
// passed is remembered (see verified.go): the same token again returns the
// same *Identity, which callers must not modify.
func (v *Verifier) Verify(ctx context.Context, authorization string) (*Identity, error) {
	id, err := v.verify(ctx, authorization)
	if err != nil {
		return nil, err // a typed nil *Error must not become a non-nil error
	}
	return id, nil
}

func (v *Verifier) verify(ctx context.Context, authorization string) (*Identity, *Error) {
	token, e := bearerToken(authorization)
	if e != nil {
		return nil, e
	}
	key := sha256.Sum256([]byte(token))
	now := v.now()
	if id, ok := v.verified.get(key, now); ok {
		return id, nil
	}
	id, e := v.verifyToken(ctx, token)
	if e != nil {
		return nil, e
	}
	until := now.Add(verifiedTTL)
	if exp := id.ExpiresAt.Add(v.skew); exp.Before(until) {
		until = exp
	}
	v.verified.put(key, id, until, now)
	return id, nil
}

// verifyToken checks a bearer token's signature, claims, scopes and
// required claims.
func (v *Verifier) verifyToken(ctx context.Context, token string) (*Identity, *Error) {
	v.checked.Add(1)
	jws, err := jose.ParseSignedCompact(token, v.algs)
	if err != nil {
		var ua *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &ua) {
			return nil, invalid(ErrAlgorithm, fmt.Sprintf("alg %q is not accepted", short(string(ua.Got))))
		}
		return nil, invalid(ErrMalformed, err.Error())
	}
	header := jws.Signatures[0].Header // compact: exactly one
	keys, e := v.keys.keys(ctx, header.KeyID, header.Algorithm)
	if e != nil {
		return nil, e
	}
	var payload []byte
	for _, k := range keys {
		if payload, err = jws.Verify(k.pub); err == nil {
			break
		}
	}
	switch {
	case errors.Is(err, jose.ErrUnsupportedCriticalHeader):
		return nil, invalid(ErrMalformed, "token has a critical header this verifier does not support")
	case err != nil:
		return nil, invalid(ErrSignature, fmt.Sprintf("alg %s, kid %q", header.Algorithm, short(header.KeyID)))
	}
	id, e := v.checkClaims(payload)
	if e != nil {
		return nil, e
	}
	id.KeyID = header.KeyID
	if e := v.authorize(id); e != nil {
		return nil, e
	}
	return id, nil
}

// short truncates attacker-chosen text for logs.
func short(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
