package auth

import (
	"errors"
	"strings"
)

// Realm is the protection space named in every challenge.
const Realm = "braid"

// The kinds of failure, which callers branch on with errors.Is. Verify
// returns them inside an *Error.
var (
	// ErrMissingToken means the request carries no bearer token: no
	// Authorization header, or one with another scheme ("Basic ..."). It is
	// answered 401 with a bare challenge (RFC 6750 §3.1).
	ErrMissingToken = errors.New("no bearer token")

	// ErrInvalidToken means the bearer token was refused; Error.Reason says
	// why. It is answered 401 with error="invalid_token".
	ErrInvalidToken = errors.New("invalid token")

	// ErrForbidden means the token is valid but lacks a scope or claim
	// value the route requires. It is answered 403 with
	// error="insufficient_scope".
	ErrForbidden = errors.New("insufficient scope")
)

// Reasons for ErrInvalidToken and ErrForbidden, the Reason of an *Error.
// Their text is sent to the client as the challenge's error_description;
// the specifics (Error.Detail) are not.
var (
	// ErrMalformed: the header or token is not a well-formed JWS compact
	// token of at most MaxTokenBytes, or its claims are not a JSON object.
	ErrMalformed = errors.New("token is malformed")
	// ErrAlgorithm: the "alg" header is not allowed, or does not fit the key.
	ErrAlgorithm = errors.New("token algorithm is not accepted")
	// ErrUnknownKey: no key of the key set matches the token's "kid", even
	// after fetching the set again.
	ErrUnknownKey = errors.New("token signing key is unknown")
	// ErrKeysUnavailable: the key set could not be fetched yet, so no token
	// can be checked. An edge may prefer to answer 503 for this reason.
	ErrKeysUnavailable = errors.New("signing keys are unavailable")
	// ErrSignature: the signature does not verify with the key.
	ErrSignature = errors.New("token signature is invalid")
	// ErrClaims: a registered claim is missing ("exp" is required) or has
	// the wrong type.
	ErrClaims = errors.New("token claims are invalid")
	// ErrExpired: "exp" has passed (beyond the clock skew).
	ErrExpired = errors.New("token is expired")
	// ErrNotYetValid: "nbf" or "iat" is in the future (beyond the skew).
	ErrNotYetValid = errors.New("token is not valid yet")
	// ErrIssuer: "iss" is not the configured issuer.
	ErrIssuer = errors.New("token issuer is not accepted")
	// ErrAudience: "aud" holds none of the configured audiences.
	ErrAudience = errors.New("token audience is not accepted")
	// ErrMissingScope: (ErrForbidden) a required scope is absent.
	ErrMissingScope = errors.New("token lacks a required scope")
	// ErrClaimMismatch: (ErrForbidden) a required claim is absent or has
	// another value.
	ErrClaimMismatch = errors.New("token lacks a required claim value")
)

// Error is the error Verify returns. It matches its kind (Err) and its
// reason (Reason) with errors.Is.
type Error struct {
	// Err is the kind: ErrMissingToken, ErrInvalidToken or ErrForbidden.
	Err error
	// Reason is why, one of the reasons above; nil for ErrMissingToken.
	Reason error
	// Detail gives specifics for logs ("exp 2026-03-01T12:00:00Z, now
	// ..."). It is not sent to the client and never holds the token; text
	// the client chose (a kid, an iss) is quoted and cut to 64 bytes.
	Detail string
	// Scope is, for ErrForbidden, the scopes the route requires,
	// space-separated, as the challenge's scope attribute.
	Scope string
}

// Error returns "kind: reason: detail", e.g.
// "invalid token: token is expired: exp ... is before now".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	if e.Reason != nil {
		b.WriteString(": ")
		b.WriteString(e.Reason.Error())
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns the kind and the reason.
func (e *Error) Unwrap() []error {
	if e.Reason == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Reason}
}

// Challenge returns the value of the WWW-Authenticate header to send with
// the 401 or 403 answer (RFC 6750 §3):
//
//	Bearer realm="braid"                      (ErrMissingToken)
//	Bearer realm="braid", error="invalid_token", error_description="token is expired"
//	Bearer realm="braid", error="insufficient_scope", error_description="...", scope="orders:read"
func (e *Error) Challenge() string {
	var b strings.Builder
	b.WriteString(`Bearer realm="` + Realm + `"`)
	switch {
	case errors.Is(e.Err, ErrInvalidToken):
		b.WriteString(`, error="invalid_token"`)
	case errors.Is(e.Err, ErrForbidden):
		b.WriteString(`, error="insufficient_scope"`)
	default:
		return b.String()
	}
	if e.Reason != nil {
		b.WriteString(`, error_description="`)
		b.WriteString(quotable(e.Reason.Error()))
		b.WriteByte('"')
	}
	if e.Scope != "" && errors.Is(e.Err, ErrForbidden) {
		b.WriteString(`, scope="`)
		b.WriteString(quotable(e.Scope))
		b.WriteByte('"')
	}
	return b.String()
}

// quotable drops the characters RFC 6750 does not allow inside
// error_description and scope values: anything but printable ASCII, '"'
// and '\'.
func quotable(s string) string {
	ok := true
	for i := 0; i < len(s) && ok; i++ {
		ok = s[i] >= 0x20 && s[i] <= 0x7e && s[i] != '"' && s[i] != '\\'
	}
	if ok {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b = append(b, c)
		}
	}
	return string(b)
}

// invalid returns an ErrInvalidToken *Error.
func invalid(reason error, detail string) *Error {
	return &Error{Err: ErrInvalidToken, Reason: reason, Detail: detail}
}
