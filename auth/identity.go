package auth

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// Identity is what a verified token says about its bearer.
type Identity struct {
	// Subject is the "sub" claim; "" when the token has none.
	Subject string
	// Issuer is the "iss" claim, the configured issuer.
	Issuer string
	// Audience is the "aud" claim, as a list.
	Audience []string
	// Scopes are the scopes of the "scope" and "scp" claims.
	Scopes []string
	// ExpiresAt is the "exp" claim.
	ExpiresAt time.Time
	// KeyID is the "kid" header of the token; "" when it had none.
	KeyID string
	// Claims is the whole claims set as decoded by encoding/json with
	// UseNumber: strings, json.Number, bool, nil, []any and map[string]any.
	// Treat it as read-only.
	Claims map[string]any
}

// Lookup returns the value at path as text, for templates: "sub" (the
// subject), "iss" (the issuer), or "claims." followed by claim names
// joined by dots, walking into objects ("claims.tenant",
// "claims.org.id"). A string is returned as is, a number in canonical
// decimal (no exponent, no trailing zeros, "-0" as "0"), a boolean as true
// or false. It reports false when the path is absent, or names null, an
// object or an array, or a claim name holding a dot (which cannot be
// addressed).
func (id *Identity) Lookup(path string) (string, bool) {
	switch path {
	case "sub":
		return id.Subject, id.Subject != ""
	case "iss":
		return id.Issuer, id.Issuer != ""
	}
	rest, ok := strings.CutPrefix(path, "claims.")
	if !ok {
		return "", false
	}
	var v any = id.Claims
	for name := range strings.SplitSeq(rest, ".") {
		obj, ok := v.(map[string]any)
		if !ok || name == "" {
			return "", false
		}
		if v, ok = obj[name]; !ok {
			return "", false
		}
	}
	return scalarText(v)
}

// scalarText renders a decoded JSON scalar as text.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case json.Number:
		return canonicalNumber(x)
	}
	return "", false
}

// canonicalNumber renders a JSON number in canonical decimal: an integer
// literal as written (JSON allows no leading zeros or "+"), other literals
// ("1.50", "1e3", "-0") through float64 without an exponent ("1.5",
// "1000", "0"). A number beyond float64's range is not usable.
func canonicalNumber(n json.Number) (string, bool) {
	s := n.String()
	if isIntegerLiteral(s) {
		if s == "-0" {
			return "0", true
		}
		return s, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return "", false
	}
	if f == 0 {
		return "0", true // and not "-0"
	}
	return strconv.FormatFloat(f, 'f', -1, 64), true
}

// isIntegerLiteral reports whether s is "-"? digits.
func isIntegerLiteral(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
