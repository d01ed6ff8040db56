package routes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/breaker"
	"github.com/braidgw/braid/upstream"
)

// StatusClientClosed is logged (never sent) when the client went away
// before the response was ready, as nginx does.
const StatusClientClosed = 499

// apiError is the JSON body of every error response.
type apiError struct {
	Status  int    `json:"status"`
	Code    string `json:"error"`
	Message string `json:"message"`
	// Call is the call that failed.
	Call string `json:"call,omitempty"`
	// Upstream is the upstream at fault: the failed call's, or, when the
	// call could not be made because another call's result held bad data
	// for it, the upstream that sent that data.
	Upstream string `json:"upstream,omitempty"`
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration `json:"-"`
}

// classify maps an error from a request's handling to the response status
// and body. It is the one place where errors become HTTP statuses.
func classify(err error) apiError {
	var (
		pe  *paramError
		ie  *aggregate.InputError
		ce  *aggregate.CallError
		se  *upstream.StatusError
		rej *upstream.RejectedError
		de  *aggregate.DataError
	)
	switch {
	case errors.As(err, &pe):
		return apiError{Status: http.StatusBadRequest, Code: "invalid_parameter", Message: pe.Error()}
	case errors.As(err, &ie):
		return apiError{Status: http.StatusBadRequest, Code: "invalid_parameter", Message: ie.Error()}
	}
	e := apiError{Status: http.StatusBadGateway, Code: "upstream_error"}
	who := "the gateway"
	if errors.As(err, &ce) {
		e.Call, e.Upstream = ce.Call, ce.Upstream
		who = fmt.Sprintf("upstream %s", ce.Upstream)
	}
	if errors.As(err, &de) { // the data came from another call: blame its upstream
		e.Upstream = de.Upstream
		who = fmt.Sprintf("upstream %s", de.Upstream)
	}
	var what string
	switch {
	case errors.Is(err, aggregate.ErrPanic):
		e.Status, e.Code, what = http.StatusInternalServerError, "internal_error", "the gateway failed while handling it"
	case errors.Is(err, context.Canceled):
		e.Status, e.Code, what = StatusClientClosed, "client_closed", "the client closed the request"
	case errors.Is(err, context.DeadlineExceeded):
		e.Status, e.Code, what = http.StatusGatewayTimeout, "deadline_exceeded", who+" did not answer within the deadline"
	case errors.As(err, &rej) && errors.Is(err, breaker.ErrOpen):
		e.Status, e.Code, e.RetryAfter = http.StatusServiceUnavailable, "circuit_open", max(rej.RetryAfter, time.Second)
		what = who + " is failing; calls to it are paused (circuit breaker open)"
	case errors.Is(err, upstream.ErrMemoryBudget):
		e.Status, e.Code, e.RetryAfter = http.StatusServiceUnavailable, "overloaded", time.Second
		what = "the gateway holds too many upstream response bytes to take " + who + "'s answer"
	case errors.As(err, &rej):
		e.Status, e.Code, e.RetryAfter = http.StatusServiceUnavailable, "overloaded", time.Second
		what = who + " has too many calls in flight"
	case errors.As(err, &se) && se.Status == http.StatusNotFound:
		e.Status, e.Code, what = http.StatusNotFound, "not_found", who+" answered 404 not found"
	case errors.Is(err, upstream.ErrUnavailable):
		e.Status, e.Code, what = http.StatusServiceUnavailable, "upstream_unavailable", who+" is refusing calls"
	case errors.As(err, &se):
		what = fmt.Sprintf("%s answered status %d", who, se.Status)
	case errors.Is(err, upstream.ErrInvalidJSON):
		e.Code, what = "invalid_upstream_response", who+" sent a body that is not valid JSON"
	case errors.Is(err, upstream.ErrTooLarge):
		e.Code, what = "invalid_upstream_response", who+" sent a body over its size limit"
	case errors.Is(err, upstream.ErrTruncated):
		e.Code, what = "invalid_upstream_response", who+" sent a body that was cut short"
	case de != nil:
		e.Code, what = "invalid_upstream_response", fmt.Sprintf("%s sent data it cannot use: {%s} %s (in the result of call %q)", who, de.Ref, de.Msg, de.Call)
	case errors.Is(err, aggregate.ErrBadData):
		e.Code, what = "invalid_upstream_response", who+" sent data of an unexpected shape"
	case errors.Is(err, upstream.ErrBadPath):
		what = who + " was not called: the gateway refused the request path it built for it"
	default:
		what = who + " could not be reached"
	}
	e.Message = what
	if e.Call != "" {
		e.Message = fmt.Sprintf("call %q failed: %s", e.Call, what)
		if errors.Is(err, aggregate.ErrDependencyFailed) {
			e.Message = fmt.Sprintf("call %q could not run: a call it depends on failed: %s", e.Call, what)
		}
	}
	return e
}

// writeError writes e as the JSON error response.
func writeError(w http.ResponseWriter, e apiError) {
	if e.Status == StatusClientClosed {
		return
	}
	body, _ := json.Marshal(e) // apiError always marshals
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(body, '\n'))
}
