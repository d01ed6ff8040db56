package auth

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Defaults applied by New to the zero fields of a Config, and the bounds
// Validate enforces.
const (
	defaultClockSkew          = 30 * time.Second
	maxClockSkew              = 5 * time.Minute
	defaultRefreshInterval    = 5 * time.Minute
	minRefreshInterval        = time.Second
	defaultMinRefetchInterval = 10 * time.Second
	minMinRefetchInterval     = 100 * time.Millisecond
	defaultFetchTimeout       = 5 * time.Second
	maxFetchTimeout           = time.Minute
)

// defaultAlgorithms is Config.Algorithms' default.
var defaultAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// Config is one auth block: the rules a bearer token must meet and where
// the keys that sign it come from. Zero values mean "use the default";
// negative values are rejected by Validate.
type Config struct {
	// Issuer is the exact value the token's "iss" claim must have (no
	// normalisation: "https://idp/" and "https://idp" differ). Required.
	Issuer string `yaml:"issuer"`

	// Audiences lists the accepted audiences: the token's "aud" claim (a
	// string or an array) must hold at least one of them. Required, so
	// that a token the issuer minted for another service is refused.
	Audiences []string `yaml:"audiences"`

	// Algorithms lists the accepted signature algorithms ("alg" header):
	// RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 and
	// EdDSA (Ed25519). Default [RS256, ES256, EdDSA]. "none" and the HMAC
	// algorithms (HS256...) are refused: key sets publish public keys, and
	// a shared secret would let every holder mint tokens.
	Algorithms []string `yaml:"algorithms"`

	// ClockSkew is the leeway allowed when checking "exp", "nbf" and "iat"
	// against the clock, for clocks that disagree a little. Default 30s, at
	// most 5m.
	ClockSkew time.Duration `yaml:"clock_skew"`

	// JWKSURL is the http(s) URL of the issuer's JSON Web Key Set (RFC
	// 7517), e.g. "https://idp.example/.well-known/jwks.json". Exactly one
	// of JWKSURL and JWKSFile is required. Plain http belongs on a trusted
	// network only: whoever can alter the answer can mint tokens.
	JWKSURL string `yaml:"jwks_url"`

	// JWKSFile is the path of a file holding a JSON Web Key Set, read once
	// by New: for offline use and tests.
	JWKSFile string `yaml:"jwks_file"`

	// RefreshInterval is how old the key set may grow before it is fetched
	// again. The refresh happens on the first verification after that, in
	// the background: tokens are checked against the keys at hand
	// meanwhile. Default 5m, at least 1s.
	RefreshInterval time.Duration `yaml:"refresh_interval"`

	// MinRefetchInterval is the least time between two fetches of the key
	// set: a token whose "kid" is not in the set causes a fetch (for a key
	// that was just rotated in) only if none started this recently, and
	// failed fetches are retried no sooner. It bounds what a client sending
	// made-up key ids, or an issuer that is down, costs. Default 10s, at
	// least 100ms.
	MinRefetchInterval time.Duration `yaml:"min_refetch_interval"`

	// FetchTimeout bounds one fetch of the key set, connecting and reading
	// included. Default 5s, at most 1m.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`

	// Scopes lists scopes the token must all hold, in its "scope" claim (a
	// space-separated string, RFC 8693) or "scp" claim (an array of strings
	// or a space-separated string). A valid token lacking one is answered
	// 403 (ErrForbidden). Default none.
	Scopes []string `yaml:"scopes"`

	// RequiredClaims maps claim paths to the value they must have, compared
	// as Identity.Lookup renders it ("tenant: acme", "org.id: 42",
	// "email_verified: true"). A valid token whose claim is absent or
	// differs is answered 403 (ErrForbidden). Default none.
	RequiredClaims map[string]string `yaml:"required_claims"`
}

// Validate reports every problem with c, each naming its YAML field
// ("jwks_url: must be an absolute http or https URL, got ..."), joined with
// errors.Join in the order of the fields. It returns nil when c is usable.
// The caller prefixes the section ("routes[2].auth.").
func (c Config) Validate() error {
	errs := []error{
		required("issuer", c.Issuer),
		validateAudiences(c.Audiences),
	}
	errs = append(errs, validateAlgorithms(c.Algorithms)...)
	errs = append(errs,
		within("clock_skew", c.ClockSkew, 0, maxClockSkew),
		validateKeySource(c.JWKSURL, c.JWKSFile),
		within("refresh_interval", c.RefreshInterval, minRefreshInterval, 0),
		within("min_refetch_interval", c.MinRefetchInterval, minMinRefetchInterval, 0),
		within("fetch_timeout", c.FetchTimeout, 0, maxFetchTimeout),
	)
	errs = append(errs, validateScopes(c.Scopes)...)
	errs = append(errs, validateRequiredClaims(c.RequiredClaims)...)
	return errors.Join(errs...)
}

// WithDefaults returns c with every zero field set to its default. It does
// not validate c; New does both.
func (c Config) WithDefaults() Config {
	if len(c.Algorithms) == 0 {
		c.Algorithms = defaultAlgorithms
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = defaultClockSkew
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = defaultRefreshInterval
	}
	if c.MinRefetchInterval == 0 {
		c.MinRefetchInterval = defaultMinRefetchInterval
	}
	if c.FetchTimeout == 0 {
		c.FetchTimeout = defaultFetchTimeout
	}
	return c
}

func required(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("%s: is required", field)
	}
	return nil
}

// within checks a duration that 0 defaults: not negative, and when set at
// least lo and (if hi > 0) at most hi.
func within(field string, d, lo, hi time.Duration) error {
	switch {
	case d < 0:
		return fmt.Errorf("%s: must not be negative, got %s", field, d)
	case d == 0:
		return nil
	case d < lo:
		return fmt.Errorf("%s: must be at least %s, got %s", field, lo, d)
	case hi > 0 && d > hi:
		return fmt.Errorf("%s: must be at most %s, got %s", field, hi, d)
	}
	return nil
}

func validateAudiences(auds []string) error {
	if len(auds) == 0 {
		return errors.New("audiences: at least one audience is required")
	}
	for i, a := range auds {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("audiences[%d]: must not be empty", i)
		}
	}
	return nil
}

func validateAlgorithms(algs []string) []error {
	var errs []error
	for i, a := range algs {
		field := fmt.Sprintf("algorithms[%d]", i)
		switch {
		case supportedAlgorithm(a):
		case strings.EqualFold(a, "none"):
			errs = append(errs, fmt.Errorf(`%s: "none" (unsigned tokens) is never accepted`, field))
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			errs = append(errs, fmt.Errorf("%s: %s is not supported: HMAC needs a shared secret, and key sets hold public keys; use RS256, ES256 or EdDSA", field, a))
		default:
			errs = append(errs, fmt.Errorf("%s: unknown algorithm %q, want one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA", field, a))
		}
	}
	return errs
}

func validateKeySource(rawURL, file string) error {
	switch {
	case rawURL == "" && file == "":
		return errors.New("jwks_url: one of jwks_url and jwks_file is required")
	case rawURL != "" && file != "":
		return errors.New("jwks_file: must not be set together with jwks_url")
	case file != "":
		return nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("jwks_url: must be an absolute http or https URL without a fragment, got %q", rawURL)
	}
	return nil
}

func validateScopes(scopes []string) []error {
	var errs []error
	for i, s := range scopes {
		if !isScopeToken(s) {
			errs = append(errs, fmt.Errorf("scopes[%d]: must be a non-empty scope token (printable ASCII, no space, quote or backslash), got %q", i, s))
		}
	}
	return errs
}

// isScopeToken reports whether s is a scope-token of RFC 6749 §3.3:
// 1*( %x21 / %x23-5B / %x5D-7E ).
func isScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func validateRequiredClaims(m map[string]string) []error {
	var errs []error
	for _, path := range slices.Sorted(maps.Keys(m)) {
		if !validPath(path) {
			errs = append(errs, fmt.Errorf("required_claims: %q is not a claim path (names joined by dots, none empty)", path))
		}
	}
	return errs
}

// validPath reports whether path is dot-separated non-empty names.
func validPath(path string) bool {
	for name := range strings.SplitSeq(path, ".") {
		if name == "" {
			return false
		}
	}
	return true
}
