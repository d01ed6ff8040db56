package routes

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"time"
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

// guardBody keeps request bodies out: no route uses one, so none is read,
// let alone buffered.
//
//   - Transfer-Encoding: chunked (HTTP/1.1) is refused with 400 and the
//     connection closed, unread. net/http deletes a Content-Length sent
//     along with it before any handler runs (RFC 9112 6.3), so a chunked
//     request cannot be told apart from one carrying both headers: the
//     request smuggling attempt where a proxy in front frames the request
//     by its Content-Length and the gateway by its chunks.
//   - A declared Content-Length over max is refused with 413, unread, and
//     the connection is closed.
//   - Any other body is ignored. net/http itself discards up to 256 KiB
//     of an unread body before it writes the response, so that the
//     connection can serve the next request, and closes the connection
//     after the response instead if more is left; it never buffers it.
func guardBody(max int64) func(http.Handler) http.Handler {
	tooLarge := apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Message: fmt.Sprintf("request body is over the limit of %d bytes", max)}
	chunked := apiError{Status: http.StatusBadRequest, Code: "bad_framing", Message: "Transfer-Encoding: chunked is refused (no route reads a body), and so is a request with both Content-Length and Transfer-Encoding"}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case slices.Contains(r.TransferEncoding, "chunked"):
				refuse(w, chunked)
			case r.ContentLength > max:
				refuse(w, tooLarge)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// refuse answers e and closes the connection without reading the body:
// net/http would otherwise read up to 256 KiB of it, before the response
// and again before closing, to discard it.
func refuse(w http.ResponseWriter, e apiError) {
	w.Header().Set("Connection", "close")
	writeError(w, e)
	// Reads from now on fail at once; where the writer cannot do this (a
	// recorder in tests), the discard is only slower.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}
