package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/braidgw/braid/observability"
)

// Defaults of RetryConfig.
const (
	defaultRetryAttempts   = 3
	defaultRetryBackoff    = 25 * time.Millisecond
	defaultRetryMaxBackoff = 250 * time.Millisecond
)

// defaultRetryStatuses are the answers retried unless RetryConfig.Statuses
// says otherwise: the ones that mean "try again", not "you are wrong".
var defaultRetryStatuses = []int{http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// RetryConfig retries idempotent calls (GET, HEAD) that failed in a way a
// second try may fix: a connection refused or reset, a response cut short,
// a try's own timeout (see Config.TryTimeout) or one of Statuses. Waits use
// exponential backoff with full jitter, honour an upstream's Retry-After on
// 429 and 503 when it fits the deadline, never run past the call's
// deadline, and draw from the upstream's retry budget.
type RetryConfig struct {
	// Disabled makes every call a single try. Default false: on.
	Disabled bool `yaml:"disabled"`
	// Attempts is the most tries of one call, the first included. Default 3.
	Attempts int `yaml:"attempts"`
	// Backoff is the base wait: before the n-th retry the wait is a random
	// duration in [0, min(MaxBackoff, Backoff·2^(n-1))). Default 25ms.
	Backoff time.Duration `yaml:"backoff"`
	// MaxBackoff caps the wait before one retry. Default 250ms.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// Statuses are the upstream answers that are retried. Default 429, 502,
	// 503 and 504.
	Statuses []int `yaml:"statuses"`
}

// Validate reports every bad field, named as in YAML.
func (c RetryConfig) Validate() []error {
	var errs []error
	if c.Attempts < 0 {
		errs = append(errs, fmt.Errorf("attempts: must not be negative, got %d", c.Attempts))
	}
	if c.Backoff < 0 {
		errs = append(errs, fmt.Errorf("backoff: must not be negative, got %s", c.Backoff))
	}
	if c.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("max_backoff: must not be negative, got %s", c.MaxBackoff))
	}
	if c.Backoff > 0 && c.MaxBackoff > 0 && c.MaxBackoff < c.Backoff {
		errs = append(errs, fmt.Errorf("max_backoff: %s is less than backoff %s", c.MaxBackoff, c.Backoff))
	}
	for i, s := range c.Statuses {
		if s < 400 || s > 599 {
			errs = append(errs, fmt.Errorf("statuses[%d]: %d is not an HTTP error status (400-599)", i, s))
		}
	}
	return errs
}

func (c RetryConfig) withDefaults() RetryConfig {
	if c.Disabled {
		c.Attempts = 1
	}
	if c.Attempts == 0 {
		c.Attempts = defaultRetryAttempts
	}
	if c.Backoff == 0 {
		c.Backoff = defaultRetryBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(defaultRetryMaxBackoff, c.Backoff)
	}
	if c.Statuses == nil {
		c.Statuses = defaultRetryStatuses
	}
	return c
}

// tries is the retry and hedging layer of one upstream: it turns one call
// into one or more tries of the layers below it.
type tries struct {
	name       string
	cfg        RetryConfig // with defaults
	tryTimeout time.Duration
	budget     *budget
	hedge      *hedger // nil when hedging is off
	rand       func() float64
	rec        *observability.Upstream // nil records nothing
}

// active reports whether the layer does anything: otherwise the factory
// leaves it out.
func (t *tries) active() bool {
	return t.cfg.Attempts > 1 || t.hedge != nil || t.tryTimeout > 0 || t.rec != nil
}

// middleware runs a call as tries: idempotent calls are retried and hedged,
// others get exactly one try.
func (t *tries) middleware(next Fetch) Fetch {
	return func(ctx context.Context, req *Request) (*Response, error) {
		if req != nil && req.Method != "" && req.Method != http.MethodGet && req.Method != http.MethodHead {
			return t.try(ctx, next, req, 1, false)
		}
		t.budget.call()
		for attempt := 1; ; attempt++ {
			resp, err := t.once(ctx, next, req, attempt)
			if err == nil || attempt >= t.cfg.Attempts || !t.retryable(ctx, err) {
				return resp, err
			}
			wait := t.wait(attempt, err)
			if !fits(ctx, wait) || !t.budget.withdraw() {
				return nil, err
			}
			if sleep(ctx, wait) != nil {
				return nil, err
			}
		}
	}
}

// try makes try number attempt of a call (a hedge or not), under the
// per-try timeout if there is one.
func (t *tries) try(ctx context.Context, next Fetch, req *Request, attempt int, hedge bool) (*Response, error) {
	t.rec.Try(attempt > 1, hedge)
	if observability.Recording(ctx) {
		ctx = observability.WithTry(ctx, attempt, hedge)
	}
	if t.tryTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.tryTimeout)
		defer cancel()
	}
	if t.hedge == nil {
		return next(ctx, req)
	}
	start := time.Now()
	resp, err := next(ctx, req)
	if err == nil {
		t.hedge.observe(time.Since(start))
	}
	return resp, err
}

// retryable reports whether err, from a try of a call whose context is
// ctx, may be fixed by trying again.
func (t *tries) retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false // the caller's deadline or cancellation: no time to try again
	}
	var (
		se  *StatusError
		rej *RejectedError
	)
	switch {
	case errors.As(err, &rej), errors.Is(err, ErrBadPath), errors.Is(err, ErrInvalidJSON), errors.Is(err, ErrTooLarge):
		return false
	case errors.As(err, &se):
		return slices.Contains(t.cfg.Statuses, se.Status)
	case errors.Is(err, context.Canceled):
		return false
	}
	return true // connection refused or reset, body cut short, the try's own timeout
}

// wait is how long to wait before retry number attempt: the upstream's
// Retry-After on a 429 or 503, else full-jitter exponential backoff.
func (t *tries) wait(attempt int, err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) && se.RetryAfter > 0 &&
		(se.Status == http.StatusTooManyRequests || se.Status == http.StatusServiceUnavailable) {
		return se.RetryAfter
	}
	ceiling := t.cfg.MaxBackoff
	if shift := attempt - 1; shift < 30 {
		ceiling = min(ceiling, t.cfg.Backoff<<shift)
	}
	return time.Duration(t.rand() * float64(ceiling))
}

// fits reports whether a wait of d, and then a try, can still happen
// before ctx's deadline.
func fits(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > d
}

// sleep waits for d or until ctx is done, whichever is first, and returns
// ctx's error in the second case. It stops its timer either way.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
