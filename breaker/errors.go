package breaker

import (
	"errors"
	"fmt"
	"time"
)

// ErrOpen is the sentinel for a call the breaker rejected: every error Allow
// returns satisfies errors.Is(err, ErrOpen).
var ErrOpen = errors.New("circuit breaker is open")

// OpenError is the error Allow returns when it rejects a call. It unwraps to
// ErrOpen.
type OpenError struct {
	// RetryAfter is how long until the breaker will admit a probe, never
	// negative. While open it is the rest of the open period. While
	// half-open with every probe permit taken it is 0: the probes in flight
	// decide what happens next (close, re-open, or free a permit), so no
	// time can be promised; an HTTP edge should send its own minimum.
	RetryAfter time.Duration
}

// Error returns "circuit breaker is open (retry after 1.2s)".
func (e *OpenError) Error() string {
	return fmt.Sprintf("%s (retry after %s)", ErrOpen, e.RetryAfter)
}

// Unwrap returns ErrOpen.
func (e *OpenError) Unwrap() error { return ErrOpen }
