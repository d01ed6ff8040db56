// Package auth verifies the JWT bearer tokens of requests to protected
// routes: signed by the configured issuer's keys, for one of the configured
// audiences, not expired, and holding the scopes and claim values the
// route requires.
//
// A Verifier is built once per auth block, at start, and used by every
// request of the routes it protects:
//
//	v, err := auth.New(cfg.Auth, auth.WithLogger(log))
//	if err != nil {
//		return err // bad config, naming the field
//	}
//	defer v.Close()
//	...
//	id, err := v.VerifyRequest(r)
//	var ae *auth.Error
//	if errors.As(err, &ae) {
//		w.Header().Set("WWW-Authenticate", ae.Challenge())
//		status := http.StatusUnauthorized // ErrMissingToken, ErrInvalidToken
//		if errors.Is(err, auth.ErrForbidden) {
//			status = http.StatusForbidden
//		}
//		...
//	}
//	tenant, ok := id.Lookup("claims.tenant")
//
// # Security
//
// Only asymmetric algorithms are accepted (RS*, PS*, ES*, EdDSA; never
// "none" or HS*), and only those listed in Config.Algorithms. A token's
// "alg" must also fit the key its "kid" selects: an RSA key verifies only
// RS*/PS*, a P-256 key only ES256, an Ed25519 key only EdDSA, and a key
// whose JWK names an "alg" only that one; symmetric keys in a key set are
// ignored. So a token cannot choose how a key is used (the HS256-with-the-
// RSA-public-key confusion fails). Keys embedded in a token ("jwk", "jku",
// "x5u", "x5c") are never used. "exp" is required; "nbf" and "iat" are
// checked when present, all with Config.ClockSkew. The Authorization value
// is capped at MaxTokenBytes before any parsing.
//
// # Key sets
//
// Keys come from a JSON Web Key Set, fetched from Config.JWKSURL or read
// from Config.JWKSFile. The fetched set is cached and fetched again when
// older than RefreshInterval (in the background, on use: there is no timer
// goroutine), and when a token names a "kid" the set lacks, the request
// waiting for that fetch: a rotated-in key is picked up at once. Fetches
// are one at a time (concurrent requests share the one in flight) and at
// most one per MinRefetchInterval, so made-up kids cost one fetch per
// interval. A failing fetch (issuer down, error status, a document that is
// not a key set or exceeds 1 MiB, FetchTimeout) keeps the cached keys in
// use however old, and is logged once per streak of failures. If the very
// first fetch fails, New still succeeds and Verify refuses tokens with
// ErrKeysUnavailable until a fetch works. Close cancels a fetch in flight
// and waits for it.
//
// # Library
//
// JWS parsing and signature verification, and JWK parsing, are
// github.com/go-jose/go-jose/v4's. Chosen over
//
//   - github.com/lestrrat-go/jwx/v3: about ten more modules (goccy JSON,
//     secp256k1, httprc, testify...), and its JWKS cache (httprc) refreshes
//     from worker goroutines on the real clock, which tests cannot drive;
//   - github.com/golang-jwt/jwt/v5: it has no JWK parsing, so it needs
//     MicahParks/keyfunc and jwkset too (with golang.org/x/time), whose
//     HTTP storage refreshes from a background goroutine, or a JWK parser
//     of our own, security-sensitive code (curve checks) better not
//     written twice.
//
// go-jose has no dependencies, was already in the module graph (through
// gRPC), requires the caller's list of allowed algorithms when parsing,
// refuses an algorithm that does not fit the key type, rejects unknown
// "crit" headers, and validates EC points and RSA sizes when parsing JWKs.
// It starts no goroutine. The key set cache is this package's, in
// jwks.go, so that its clock is injected and its rules are exactly the
// ones above; its single flight is a small owned goroutine rather than
// x/sync/singleflight so that the decision to fetch (rate limit included)
// is taken under one lock and Close can wait for the fetch to end.
//
// Issuer mints tokens from a fixed Ed25519 seed, for demos and tests only.
package auth
