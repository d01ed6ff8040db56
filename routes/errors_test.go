package routes

import (
	"errors"
	"net/http/httptest"
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
