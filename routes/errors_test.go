package routes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/breaker"
	"github.com/braidgw/braid/upstream"
)

func TestClassifyRejections(t *testing.T) {
	callErr := func(err error) error {
		return &aggregate.CallError{Call: "user", Upstream: "users", Err: &upstream.Error{Upstream: "users", Method: "GET", Path: "/users/1", Err: err}}
	}
	tests := []struct {
		name           string
		err            error
		wantStatus     int
		wantCode       string
		wantRetryAfter string
	}{
		{name: "breaker open", err: callErr(&upstream.RejectedError{Err: breaker.ErrOpen, RetryAfter: 4200 * time.Millisecond}),
			wantStatus: 503, wantCode: "circuit_open", wantRetryAfter: "5"},
		{name: "breaker open, probe due now", err: callErr(&upstream.RejectedError{Err: breaker.ErrOpen}),
			wantStatus: 503, wantCode: "circuit_open", wantRetryAfter: "1"},
		{name: "bulkhead full", err: callErr(&upstream.RejectedError{Err: upstream.ErrBulkheadFull}),
			wantStatus: 503, wantCode: "overloaded", wantRetryAfter: "1"},
		{name: "memory budget exhausted", err: callErr(&upstream.RejectedError{Err: upstream.ErrMemoryBudget}),
			wantStatus: 503, wantCode: "overloaded", wantRetryAfter: "1"},
		{name: "upstream 503 has no Retry-After of ours", err: callErr(&upstream.StatusError{Status: 503}),
			wantStatus: 503, wantCode: "upstream_unavailable"},
		{name: "dependency on an open breaker", err: &aggregate.CallError{Call: "orders", Upstream: "orders",
			Err: errors.Join(aggregate.ErrDependencyFailed, callErr(&upstream.RejectedError{Err: breaker.ErrOpen, RetryAfter: time.Second}))},
			wantStatus: 503, wantCode: "circuit_open", wantRetryAfter: "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := classify(tt.err)
			rec := httptest.NewRecorder()
			writeError(rec, e)
			if rec.Code != tt.wantStatus || e.Code != tt.wantCode {
				t.Errorf("classify() = %d %s, want %d %s", rec.Code, e.Code, tt.wantStatus, tt.wantCode)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetryAfter)
			}
			if e.Message == "" || e.Upstream == "" {
				t.Errorf("classify() = %+v, want a message naming the upstream", e)
			}
		})
	}
}

// TestClassifyBlame: bad data is blamed on the upstream that sent it, a
// body cut short is an invalid response, not an unreachable upstream.
func TestClassifyBlame(t *testing.T) {
	upErr := func(name string, err error) error {
		return &upstream.Error{Upstream: name, Method: "GET", Path: "/x", Err: err}
	}
	data := &aggregate.DataError{Call: "user", Upstream: "users", Ref: "user.team", Msg: `"../.." cannot be used as a path segment`}
	tests := []struct {
		name         string
		err          error
		wantStatus   int
		wantCode     string
		wantCall     string
		wantUpstream string
		wantMsg      string
	}{
		{name: "bad data from another call", err: &aggregate.CallError{Call: "team", Upstream: "teams", Err: data},
			wantStatus: 502, wantCode: "invalid_upstream_response", wantCall: "team", wantUpstream: "users",
			wantMsg: `call "team" failed: upstream users sent data it cannot use: {user.team} "../.." cannot be used as a path segment (in the result of call "user")`},
		{name: "bad data behind a failed dependency", err: &aggregate.CallError{Call: "members", Upstream: "teams",
			Err: fmt.Errorf("%w: %q: %w", aggregate.ErrDependencyFailed, "team", &aggregate.CallError{Call: "team", Upstream: "teams", Err: data})},
			wantStatus: 502, wantCode: "invalid_upstream_response", wantCall: "members", wantUpstream: "users",
			wantMsg: `call "members" could not run: a call it depends on failed: upstream users sent data it cannot use`},
		{name: "body cut short", err: &aggregate.CallError{Call: "user", Upstream: "users", Err: upErr("users", fmt.Errorf("reading body: %w: %w", upstream.ErrTruncated, io.ErrUnexpectedEOF))},
			wantStatus: 502, wantCode: "invalid_upstream_response", wantCall: "user", wantUpstream: "users",
			wantMsg: `call "user" failed: upstream users sent a body that was cut short`},
		{name: "deadline while reading stays a deadline", err: &aggregate.CallError{Call: "user", Upstream: "users", Err: upErr("users", fmt.Errorf("reading body: %w", context.DeadlineExceeded))},
			wantStatus: 504, wantCode: "deadline_exceeded", wantCall: "user", wantUpstream: "users", wantMsg: "did not answer within the deadline"},
		{name: "bad path is not unreachable", err: &aggregate.CallError{Call: "user", Upstream: "users", Err: upErr("users", upstream.ErrBadPath)},
			wantStatus: 502, wantCode: "upstream_error", wantCall: "user", wantUpstream: "users", wantMsg: "upstream users was not called: the gateway refused the request path"},
		{name: "parameter", err: &aggregate.CallError{Call: "user", Upstream: "users", Err: &aggregate.InputError{Param: "id", Msg: `"a\\..\\b" cannot be used as a path segment`}},
			wantStatus: 400, wantCode: "invalid_parameter", wantMsg: `parameter id "a\\..\\b" cannot be used as a path segment`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := classify(tt.err)
			if e.Status != tt.wantStatus || e.Code != tt.wantCode || e.Call != tt.wantCall || e.Upstream != tt.wantUpstream || !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("classify() = %+v\nwant %d %s, call %q, upstream %q, message containing %q", e, tt.wantStatus, tt.wantCode, tt.wantCall, tt.wantUpstream, tt.wantMsg)
			}
		})
	}
}
