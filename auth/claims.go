package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// maxNumericDate is the latest NumericDate accepted, 9999-12-31T23:59:59Z;
// later or earlier than -maxNumericDate is ErrClaims.
const maxNumericDate = 253402300799

// checkClaims decodes the verified payload and checks its registered
// claims, returning the Identity it describes.
func (v *Verifier) checkClaims(payload []byte) (*Identity, *Error) {
	claims, e := decodeClaims(payload)
	if e != nil {
		return nil, e
	}
	id := &Identity{Claims: claims}
	var ok bool
	if id.Subject, ok = optionalString(claims, "sub"); !ok {
		return nil, invalid(ErrClaims, `"sub" is not a string`)
	}
	exp, present, e := numericDate(claims, "exp")
	switch {
	case e != nil:
		return nil, e
	case !present:
		return nil, invalid(ErrClaims, `"exp" is required`)
	}
	id.ExpiresAt = exp
	now := v.now()
	if !now.Before(exp.Add(v.skew)) {
		return nil, invalid(ErrExpired, fmt.Sprintf("exp %s, now %s, skew %s", stamp(exp), stamp(now), v.skew))
	}
	for _, name := range []string{"nbf", "iat"} {
		t, present, e := numericDate(claims, name)
		if e != nil {
			return nil, e
		}
		if present && now.Add(v.skew).Before(t) {
			return nil, invalid(ErrNotYetValid, fmt.Sprintf("%s %s, now %s, skew %s", name, stamp(t), stamp(now), v.skew))
		}
	}
	if id.Issuer, _ = claims["iss"].(string); id.Issuer != v.issuer {
		return nil, invalid(ErrIssuer, fmt.Sprintf("iss %q", short(id.Issuer)))
	}
	if id.Audience, e = audience(claims); e != nil {
		return nil, e
	}
	if !slices.ContainsFunc(id.Audience, func(a string) bool { return slices.Contains(v.audiences, a) }) {
		return nil, invalid(ErrAudience, fmt.Sprintf("aud %q", shortList(id.Audience)))
	}
	id.Scopes = scopes(claims)
	return id, nil
}

// authorize checks the scopes and claim values the route requires.
func (v *Verifier) authorize(id *Identity) *Error {
	var missing []string
	for _, s := range v.scopes {
		if !slices.Contains(id.Scopes, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return &Error{Err: ErrForbidden, Reason: ErrMissingScope,
			Detail: "missing " + strings.Join(missing, " "), Scope: strings.Join(v.scopes, " ")}
	}
	for _, rc := range v.required {
		if got, ok := id.Lookup("claims." + rc.path); !ok || got != rc.want {
			return &Error{Err: ErrForbidden, Reason: ErrClaimMismatch,
				Detail: fmt.Sprintf("claim %q is absent or has another value", rc.path)}
		}
	}
	return nil
}

// decodeClaims decodes a JWT claims set: one JSON object, numbers kept as
// json.Number so that large integers survive.
func decodeClaims(payload []byte) (map[string]any, *Error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, invalid(ErrMalformed, "claims are not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid(ErrMalformed, "claims have data after the JSON object")
	}
	return claims, nil
}

// optionalString returns claim name, which must be a string when present.
func optionalString(claims map[string]any, name string) (string, bool) {
	switch s := claims[name].(type) {
	case nil:
		_, present := claims[name]
		return "", !present
	case string:
		return s, true
	}
	return "", false
}

// numericDate returns the NumericDate claim name (RFC 7519 §2: seconds
// since the epoch, possibly fractional).
func numericDate(claims map[string]any, name string) (t time.Time, present bool, e *Error) {
	raw, present := claims[name]
	if !present {
		return time.Time{}, false, nil
	}
	n, ok := raw.(json.Number)
	if !ok {
		return time.Time{}, true, invalid(ErrClaims, fmt.Sprintf("%q is not a number", name))
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f > maxNumericDate || f < -maxNumericDate {
		return time.Time{}, true, invalid(ErrClaims, fmt.Sprintf("%q is out of range", name))
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)).UTC(), true, nil
}

// audience returns the "aud" claim, a string or an array of strings.
func audience(claims map[string]any) ([]string, *Error) {
	switch a := claims["aud"].(type) {
	case nil:
		return nil, invalid(ErrAudience, `"aud" is missing`)
	case string:
		return []string{a}, nil
	case []any:
		out := make([]string, 0, len(a))
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return nil, invalid(ErrClaims, `"aud" holds a value that is not a string`)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, invalid(ErrClaims, `"aud" is not a string or an array of strings`)
}

// scopes returns the scopes of the "scope" claim (space-separated, RFC
// 8693 §4.2) and of the "scp" claim (an array, or space-separated).
// Values of other types grant nothing.
func scopes(claims map[string]any) []string {
	var out []string
	if s, ok := claims["scope"].(string); ok {
		out = strings.Fields(s)
	}
	switch scp := claims["scp"].(type) {
	case string:
		out = append(out, strings.Fields(scp)...)
	case []any:
		for _, x := range scp {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func shortList(ss []string) string { return short(strings.Join(ss, " ")) }
