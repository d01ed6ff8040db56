// Package breaker is a circuit breaker for one upstream service: it stops
// sending calls to an upstream that is failing or slow, gives it time to
// recover, and lets a few probe calls through to learn whether it has.
//
// A Breaker starts Closed and admits every call. It counts calls, failures
// and slow calls over a sliding time window (Config.Window, kept as ten
// buckets) and trips to Open when the window holds at least MinCalls calls
// and the failure rate reaches FailureRate or the slow-call rate reaches
// SlowCallRate, or at once after ConsecutiveFailures failures in a row.
// While Open it rejects every call with an *OpenError, which satisfies
// errors.Is(err, ErrOpen) and says when to retry. The open period doubles
// with every trip that follows without the breaker closing in between, up to
// MaxOpenDuration, and is shortened by up to 20% of jitter so that a fleet of
// gateways does not probe a recovering upstream in lock-step. After it the
// breaker is HalfOpen and admits HalfOpenProbes probe calls: that many
// successes close it; one failed or slow probe opens it again, for longer.
//
// Every call is bracketed by Allow and Record:
//
//	t, err := b.Allow()
//	if err != nil {
//		return nil, err // an *OpenError; the upstream is not called
//	}
//	start := time.Now()
//	resp, err := fetch(ctx, req)
//	took := time.Since(start)
//	switch {
//	case err == nil:
//		b.Record(t, breaker.Success, took)
//	case errors.Is(err, context.Canceled):
//		b.Record(t, breaker.Ignored, took) // our client went away: no verdict on the upstream
//	default:
//		b.Record(t, breaker.Failure, took) // timeouts included
//	}
//	return resp, err
//
// The Ticket carries the breaker's generation, which changes with every
// transition, so the late result of a call admitted in an earlier state (a
// slow call that ends after the breaker opened) is ignored.
//
// Why not sony/gobreaker v2: its counts, even over its rolling window, do
// not see how long calls took, so it cannot trip on a slow-call rate; its
// open period is a fixed Timeout with no growth and no jitter; it reads
// time.Now itself, so tests cannot inject a clock; and it calls
// OnStateChange with its lock held. This package has those, and Allow and
// Record make no allocation on the healthy path.
package breaker
