package cache

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Limits of an invalidation request.
const (
	invalidatePath = "/cache/invalidate"
	maxAdminBody   = 1 << 20 // bytes
	maxAdminNames  = 1000    // namespaces, tags and keys together
)

// adminError is the JSON body of an error answer, as the gateway's.
type adminError struct {
	Status  int    `json:"status"`
	Code    string `json:"error"`
	Message string `json:"message"`
}

// invalidateRequest is the body of POST /cache/invalidate.
type invalidateRequest struct {
	Namespaces []string `json:"namespaces"`
	Tags       []string `json:"tags"`
	Keys       []string `json:"keys"`
}

// AdminHandler serves POST /cache/invalidate, for the admin listener only.
// The body is an Invalidation as JSON, at least one list non-empty, at most
// 1 MiB and 1000 names, no unknown field; the answer is 200 with
// {"invalidated": {...}}, what Invalidate returned. With token "" the API
// is off and every request gets 404; otherwise a request without
// "Authorization: Bearer <token>" gets 401. Errors are JSON
// {"status":N,"error":"code","message":"..."}: 400 for a bad body (naming
// what is wrong), 413 for one too large, 405 for another method, 503 when
// Redis could not be invalidated.
func (c *Cache) AdminHandler(token string) http.Handler {
	sum := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case token == "":
			writeAdminError(w, http.StatusNotFound, "not_found", "the cache admin API is off: no admin token is configured")
			return
		case r.URL.Path != invalidatePath:
			writeAdminError(w, http.StatusNotFound, "not_found", "no admin route for "+r.URL.Path)
			return
		case !authorized(r, sum):
			w.Header().Set("WWW-Authenticate", `Bearer realm="braid-admin"`)
			writeAdminError(w, http.StatusUnauthorized, "unauthorized", "send the admin token as Authorization: Bearer <token>")
			return
		case r.Method != http.MethodPost:
			w.Header().Set("Allow", http.MethodPost)
			writeAdminError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed: use POST")
			return
		}
		inv, status, err := readInvalidation(w, r)
		if err != nil {
			code := "invalid_body"
			if status == http.StatusRequestEntityTooLarge {
				code = "body_too_large"
			}
			writeAdminError(w, status, code, err.Error())
			return
		}
		out, err := c.Invalidate(r.Context(), inv)
		if err != nil {
			writeAdminError(w, http.StatusServiceUnavailable, "cache_unavailable", err.Error())
			return
		}
		writeAdminJSON(w, http.StatusOK, struct {
			Invalidated Invalidation `json:"invalidated"`
		}{out})
	})
}

// authorized reports whether r carries the token whose SHA-256 is sum.
// Comparing digests in constant time hides the token's length too.
func authorized(r *http.Request, sum [sha256.Size]byte) bool {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(cred)))
	return subtle.ConstantTimeCompare(got[:], sum[:]) == 1
}

// readInvalidation decodes and checks the request body, returning the
// status to answer with when it is bad.
func readInvalidation(w http.ResponseWriter, r *http.Request) (Invalidation, int, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	var req invalidateRequest
	if err := dec.Decode(&req); err != nil {
		return Invalidation{}, bodyStatus(err), bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Invalidation{}, http.StatusBadRequest, errors.New("the body must hold one JSON object and nothing after it")
	}
	inv := Invalidation{Namespaces: req.Namespaces, Tags: req.Tags, Keys: req.Keys}
	if inv.empty() {
		return Invalidation{}, http.StatusBadRequest,
			errors.New(`nothing to invalidate: give at least one of "namespaces", "tags", "keys"`)
	}
	if n := len(inv.Namespaces) + len(inv.Tags) + len(inv.Keys); n > maxAdminNames {
		return Invalidation{}, http.StatusBadRequest, fmt.Errorf("too many names: %d, at most %d per request", n, maxAdminNames)
	}
	for _, l := range []struct {
		field string
		names []string
	}{{"namespaces", inv.Namespaces}, {"tags", inv.Tags}, {"keys", inv.Keys}} {
		for i, n := range l.names {
			if n == "" {
				return Invalidation{}, http.StatusBadRequest, fmt.Errorf("%s[%d]: must not be empty", l.field, i)
			}
		}
	}
	return inv, 0, nil
}

// bodyStatus is the status for a body that did not decode.
func bodyStatus(err error) int {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// bodyError says in a user's words why a body did not decode.
func bodyError(err error) error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return errors.New(`the body is empty: send a JSON object such as {"tags": ["product:87"]}`)
	case errors.As(err, &tooLarge):
		return fmt.Errorf("the body is over %d bytes", tooLarge.Limit)
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("the body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	case errors.As(err, &typ) && typ.Field == "":
		return errors.New("the body must be a JSON object")
	case errors.As(err, &typ):
		return fmt.Errorf("%s: must be a list of strings", typ.Field)
	}
	return errors.New(strings.TrimPrefix(err.Error(), "json: ")) // unknown field "x"
}

// writeAdminError writes an error answer.
func writeAdminError(w http.ResponseWriter, status int, code, msg string) {
	writeAdminJSON(w, status, adminError{Status: status, Code: code, Message: msg})
}

// writeAdminJSON writes v as a JSON answer with status.
func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"status":500,"error":"internal_error","message":"could not encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
