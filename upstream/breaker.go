package upstream

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/braidgw/braid/breaker"
	"github.com/braidgw/braid/observability"
)

// attrUpstream names the upstream on span events.
const attrUpstream = attribute.Key("braid.upstream")

// BreakerConfig configures an upstream's circuit breaker, shared by every
// route calling it. The fields other than Disabled are breaker.Config's,
// with its defaults.
type BreakerConfig struct {
	// Disabled removes the breaker. Default false: on.
	Disabled       bool `yaml:"disabled"`
	breaker.Config `yaml:",inline"`
}

// breakerMiddleware fails calls fast with a *RejectedError while b is open,
// so that the upstream receives nothing, and records every other try's
// outcome and duration.
func breakerMiddleware(name string, b *breaker.Breaker) Middleware {
	return func(next Fetch) Fetch {
		return func(ctx context.Context, req *Request) (*Response, error) {
			if err := ctx.Err(); err != nil {
				return nil, newError(name, req, err) // not the upstream's doing
			}
			ticket, err := b.Allow()
			if err != nil {
				var oe *breaker.OpenError
				rej := &RejectedError{Err: breaker.ErrOpen}
				if errors.As(err, &oe) {
					rej.RetryAfter = oe.RetryAfter
				}
				observability.Event(ctx, "circuit breaker rejected the call", attrUpstream.String(name))
				return nil, newError(name, req, rej)
			}
			recording := observability.Recording(ctx)
			var before breaker.State
			if recording {
				before = b.State()
			}
			start := time.Now()
			resp, err := next(ctx, req)
			b.Record(ticket, outcome(err), time.Since(start))
			if recording {
				if after := b.State(); after != before {
					observability.Event(ctx, "circuit breaker "+after.String(), attrUpstream.String(name),
						attribute.String("from", before.String()))
				}
			}
			return resp, err
		}
	}
}

// outcome classifies a try for the breaker. Failures are what a sick
// upstream causes: connection errors, timeouts, 5xx and 429 answers,
// bodies that are cut short, not JSON or too large. Other answers, 4xx
// included, are successes: the upstream is working. A try that was
// cancelled (the client went away, a sibling call failed, a hedge lost),
// refused by a path check or by the bulkhead says nothing about the
// upstream and is ignored.
func outcome(err error) breaker.Outcome {
	if err == nil {
		return breaker.Success
	}
	var (
		se  *StatusError
		rej *RejectedError
	)
	switch {
	case errors.Is(err, context.Canceled), errors.As(err, &rej), errors.Is(err, ErrBadPath):
		return breaker.Ignored
	case errors.As(err, &se):
		if se.Status >= 500 || se.Status == http.StatusTooManyRequests {
			return breaker.Failure
		}
		return breaker.Success
	}
	return breaker.Failure
}
