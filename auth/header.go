package auth

import (
	"strconv"
	"strings"
)

// MaxTokenBytes caps the Authorization header value Verify accepts, before
// any parsing: 8 KiB, as most servers cap a header line.
const MaxTokenBytes = 8 << 10

// bearerToken extracts the token of an Authorization header value of the
// form "Bearer <token>" (RFC 6750 §2.1): the scheme in any case, one or
// more spaces, and exactly one token of base64url characters and dots.
// Another scheme, or no value, is ErrMissingToken.
func bearerToken(header string) (string, *Error) {
	if len(header) > MaxTokenBytes {
		return "", invalid(ErrMalformed, "authorization header is longer than "+strconv.Itoa(MaxTokenBytes)+" bytes")
	}
	h := strings.Trim(header, " \t")
	if h == "" {
		return "", &Error{Err: ErrMissingToken}
	}
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", &Error{Err: ErrMissingToken, Detail: "authorization scheme is not Bearer"}
	}
	token := strings.TrimLeft(rest, " ")
	if token == "" {
		return "", invalid(ErrMalformed, "no token after Bearer")
	}
	for i := 0; i < len(token); i++ {
		if !isTokenByte(token[i]) {
			return "", invalid(ErrMalformed, "token holds a character outside base64url and '.', or more than one token")
		}
	}
	return token, nil
}

// isTokenByte reports whether c may appear in a JWS compact token:
// base64url without padding, and the dots between its parts.
func isTokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
}
