package demo

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// badRequest returns a 400 error with the formatted message.
func badRequest(format string, args ...any) error {
	return &statusError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// parseID parses a positive decimal id.
func parseID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

// query parses the request's query string, rejecting what url.Values
// would silently drop, such as a ';' separator or a bad escape.
func query(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("invalid query %q: %v", r.URL.RawQuery, err)
	}
	return q, nil
}

// pathID parses the {id} path value of a request about a kind of record.
func pathID(r *http.Request, kind string) (int64, error) {
	raw := r.PathValue("id")
	id, ok := parseID(raw)
	if !ok {
		return 0, badRequest("invalid %s id %q: must be a positive integer", kind, raw)
	}
	return id, nil
}

// queryLimit parses the optional limit query parameter, which must be in
// [1, most]; absent, it is def.
func queryLimit(r *http.Request, def, most int) (int, error) {
	q, err := query(r)
	if err != nil || !q.Has("limit") {
		return def, err
	}
	raw := q.Get("limit")
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > most {
		return 0, badRequest("invalid limit %q: must be an integer from 1 to %d", raw, most)
	}
	return n, nil
}

// queryBool parses an optional boolean query parameter; absent, it is false.
func queryBool(r *http.Request, name string) (bool, error) {
	q, err := query(r)
	if err != nil || !q.Has(name) {
		return false, err
	}
	raw := q.Get(name)
	b, err := strconv.ParseBool(raw)
	if err != nil {
		return false, badRequest("invalid %s %q: must be true or false", name, raw)
	}
	return b, nil
}

// queryIDs parses the ids query parameter, a comma-separated list of at
// most most positive ids, and returns them in order with duplicates removed.
func queryIDs(r *http.Request, most int) ([]int64, error) {
	q, err := query(r)
	if err != nil {
		return nil, err
	}
	raw := q.Get("ids")
	if raw == "" {
		return nil, badRequest("missing ids: want ids=1,2,3")
	}
	parts := strings.Split(raw, ",")
	if len(parts) > most {
		return nil, badRequest("too many ids: %d, at most %d", len(parts), most)
	}
	ids := make([]int64, 0, len(parts))
	seen := make(map[int64]bool, len(parts))
	for _, p := range parts {
		id, ok := parseID(p)
		if !ok {
			return nil, badRequest("invalid ids: %q is not a positive integer", p)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}
