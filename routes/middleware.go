package routes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// recoverer turns a panic in a handler into a logged 500 JSON error instead
// of a dropped connection. http.ErrAbortHandler is re-panicked, as net/http
// expects.
func recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeError(w, apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: "the gateway failed while handling the request"})
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// limitBody refuses request bodies over max bytes with 413. A declared
// Content-Length over the limit is refused before reading; a body of unknown
// length is read up to the limit and buffered for the handler.
func limitBody(max int64) func(http.Handler) http.Handler {
	tooLarge := apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: fmt.Sprintf("request body is over the limit of %d bytes", max)}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > max {
				writeError(w, tooLarge)
				return
			}
			if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
				body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
				var mbe *http.MaxBytesError
				switch {
				case errors.As(err, &mbe):
					writeError(w, tooLarge)
					return
				case err != nil:
					writeError(w, apiError{Status: http.StatusBadRequest, Code: "bad_body", Message: "could not read the request body: " + err.Error()})
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			next.ServeHTTP(w, r)
		})
	}
}
