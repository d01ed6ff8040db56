package upstream

import (
	"context"
	"errors"
	"time"

	"github.com/braidgw/braid/observability"
)

// observe records each call's duration and outcome, retries included.
func observe(rec *observability.Upstream) Middleware {
	return func(next Fetch) Fetch {
		return func(ctx context.Context, req *Request) (*Response, error) {
			start := time.Now()
			resp, err := next(ctx, req)
			rec.Call(outcomeOf(err), time.Since(start))
			return resp, err
		}
	}
}

// outcomeOf is the outcome label of a call that ended with err.
func outcomeOf(err error) observability.Outcome {
	if err == nil {
		return observability.OK
	}
	return failureOutcome(err)
}

// failureOutcome is outcomeOf for an error. It is apart so that the
// target errors.As needs, which escapes, is allocated only on failure.
func failureOutcome(err error) observability.Outcome {
	var rej *RejectedError
	switch {
	case errors.As(err, &rej):
		return observability.Rejected
	case errors.Is(err, context.Canceled):
		return observability.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return observability.Timeout
	}
	return observability.Failed
}
