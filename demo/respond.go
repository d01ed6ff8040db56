package demo

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// statusError is an error answered with its own status and message.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

// errorBody is the JSON form of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// endpoint adapts a handler to net/http, encoding its value or its error.
func (s *Service) endpoint(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := h(r)
		if err != nil {
			status, msg := s.statusOf(r, err)
			writeError(w, status, msg)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}

// statusOf maps an error to the status and message of its response: 400 or
// 404 for statusErrors, 404 for unknown ids, 503 when the request ended
// first, 500 (logged, message hidden) for anything else.
func (s *Service) statusOf(r *http.Request, err error) (int, string) {
	if se, ok := errors.AsType[*statusError](err); ok {
		return se.status, se.msg
	}
	if errors.Is(err, ErrNotFound) {
		return http.StatusNotFound, err.Error()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return http.StatusServiceUnavailable, "request ended before the store answered"
	}
	s.logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return http.StatusInternalServerError, "internal error"
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError writes the JSON error body {"error": msg} with the given status.
func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(errorBody{Error: msg}) // a struct of one string always encodes
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
