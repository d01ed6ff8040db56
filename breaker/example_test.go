package breaker_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/braidgw/braid/breaker"
)

// The breaker trips after three failures in a row, rejects calls while open,
// and closes again once two probes succeed. The clock is a variable the
// example moves by hand.
func Example() {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b, err := breaker.New(breaker.Config{ConsecutiveFailures: 3, HalfOpenProbes: 2}, breaker.Options{
		Now:  func() time.Time { return now },
		Rand: func() float64 { return 0 }, // no jitter: open for exactly 5s
		OnStateChange: func(from, to breaker.State) {
			fmt.Printf("%s -> %s\n", from, to)
		},
	})
	if err != nil {
		panic(err)
	}

	// The upstream fails three times in a row.
	for range 3 {
		t, _ := b.Allow()
		b.Record(t, breaker.Failure, 50*time.Millisecond)
	}

	// While open, calls are rejected without reaching it.
	now = now.Add(2 * time.Second)
	_, err = b.Allow()
	var oe *breaker.OpenError
	if errors.As(err, &oe) {
		fmt.Println(err, errors.Is(err, breaker.ErrOpen))
	}

	// After the open period, probes are let through; two successes close it.
	now = now.Add(oe.RetryAfter)
	for range 2 {
		t, err := b.Allow()
		if err != nil {
			panic(err)
		}
		b.Record(t, breaker.Success, 20*time.Millisecond)
	}
	fmt.Println(b.State())

	// Output:
	// closed -> open
	// circuit breaker is open (retry after 3s) true
	// open -> half-open
	// half-open -> closed
	// closed
}
