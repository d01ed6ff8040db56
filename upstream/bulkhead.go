package upstream

import (
	"context"
	"fmt"
	"time"
)

// Defaults of BulkheadConfig.
const (
	defaultBulkheadMaxConcurrent = 1024
	defaultBulkheadMaxWait       = 10 * time.Millisecond
)

// BulkheadConfig caps the calls in flight to one upstream, shared by every
// route calling it, so that one slow service cannot hold every goroutine
// and connection of the gateway.
type BulkheadConfig struct {
	// Disabled removes the cap. Default false: on.
	Disabled bool `yaml:"disabled"`
	// MaxConcurrent is the most tries in flight at once. Default 1024
	// (calls beyond max_conns wait for a connection inside it).
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxWait is how long a try beyond the cap waits for a slot before it
	// fails fast with ErrBulkheadFull (503, or a degraded optional part).
	// Default 10ms.
	MaxWait time.Duration `yaml:"max_wait"`
}

// Validate reports every bad field, named as in YAML.
func (c BulkheadConfig) Validate() []error {
	var errs []error
	if c.MaxConcurrent < 0 {
		errs = append(errs, fmt.Errorf("max_concurrent: must not be negative, got %d", c.MaxConcurrent))
	}
	if c.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("max_wait: must not be negative, got %s", c.MaxWait))
	}
	return errs
}

func (c BulkheadConfig) withDefaults() BulkheadConfig {
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = defaultBulkheadMaxConcurrent
	}
	if c.MaxWait == 0 {
		c.MaxWait = defaultBulkheadMaxWait
	}
	return c
}

// bulkhead is a counting semaphore with a bounded wait.
type bulkhead struct {
	slots   chan struct{} // one token per try in flight
	maxWait time.Duration
}

func newBulkhead(c BulkheadConfig) *bulkhead {
	c = c.withDefaults()
	return &bulkhead{slots: make(chan struct{}, c.MaxConcurrent), maxWait: c.MaxWait}
}

// acquire takes a slot, waiting at most maxWait (and never past ctx). It
// returns ErrBulkheadFull, or ctx's error, when it gets none.
func (b *bulkhead) acquire(ctx context.Context) error {
	select {
	case b.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(b.maxWait)
	defer t.Stop()
	select {
	case b.slots <- struct{}{}:
		return nil
	case <-t.C:
		return ErrBulkheadFull
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *bulkhead) release() { <-b.slots }

// middleware holds a slot for the duration of each try.
func (b *bulkhead) middleware(name string) Middleware {
	return func(next Fetch) Fetch {
		return func(ctx context.Context, req *Request) (*Response, error) {
			if err := b.acquire(ctx); err != nil {
				if err == ErrBulkheadFull {
					err = &RejectedError{Err: err}
				}
				return nil, newError(name, req, err)
			}
			defer b.release()
			return next(ctx, req)
		}
	}
}
