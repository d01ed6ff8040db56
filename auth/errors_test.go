package auth

import (
	"errors"
	"testing"
)

func TestChallenge(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  *Error
		want string
	}{
		{"missing", &Error{Err: ErrMissingToken}, `Bearer realm="braid"`},
		{"missing, other scheme", &Error{Err: ErrMissingToken, Detail: "authorization scheme is not Bearer"}, `Bearer realm="braid"`},
		{"expired", invalid(ErrExpired, "exp 2026-01-01T00:00:00Z"),
			`Bearer realm="braid", error="invalid_token", error_description="token is expired"`},
		{"malformed", invalid(ErrMalformed, `kid "\"evil\""`),
			`Bearer realm="braid", error="invalid_token", error_description="token is malformed"`},
		{"forbidden", &Error{Err: ErrForbidden, Reason: ErrMissingScope, Scope: "orders:read profile"},
			`Bearer realm="braid", error="insufficient_scope", error_description="token lacks a required scope", scope="orders:read profile"`},
		{"forbidden by a claim", &Error{Err: ErrForbidden, Reason: ErrClaimMismatch},
			`Bearer realm="braid", error="insufficient_scope", error_description="token lacks a required claim value"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Challenge(); got != tc.want {
				t.Fatalf("Challenge() =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestErrorMatching(t *testing.T) {
	err := error(invalid(ErrExpired, "exp long ago"))
	if !errors.Is(err, ErrInvalidToken) || !errors.Is(err, ErrExpired) || errors.Is(err, ErrForbidden) {
		t.Fatalf("%v matches the wrong sentinels", err)
	}
	if got := err.Error(); got != "invalid token: token is expired: exp long ago" {
		t.Fatalf("Error() = %q", got)
	}
	missing := error(&Error{Err: ErrMissingToken})
	if !errors.Is(missing, ErrMissingToken) || missing.Error() != "no bearer token" {
		t.Fatalf("missing: %v", missing)
	}
}

func TestQuotable(t *testing.T) {
	if got := quotable("a\"b\\c\x00d\u00e9e"); got != "abcde" {
		t.Fatalf("quotable = %q", got)
	}
}
