package breaker

import "time"

// counts are the calls, failures and slow calls seen in a span of time.
type counts struct {
	calls, failures, slow int
}

// window is a sliding time window kept as a ring of numBuckets buckets of
// width each. Buckets are zeroed lazily when time moves past them, so it
// needs no timer; time is whatever the caller says it is.
type window struct {
	width   time.Duration // Window / numBuckets
	start   time.Time     // when bucket 0 began
	head    int64         // number of the newest bucket, in widths since start
	buckets [numBuckets]counts
	total   counts // sum of buckets
}

// reset empties w and starts its first bucket at now.
func (w *window) reset(now time.Time) {
	w.start = now
	w.head = 0
	w.buckets = [numBuckets]counts{}
	w.total = counts{}
}

// add counts one call that ended at now.
func (w *window) add(now time.Time, failed, slow bool) {
	w.advance(int64(now.Sub(w.start) / w.width))
	b := &w.buckets[w.head%numBuckets]
	b.calls++
	w.total.calls++
	if failed {
		b.failures++
		w.total.failures++
	}
	if slow {
		b.slow++
		w.total.slow++
	}
}

// advance makes bucket n the newest, zeroing the buckets that slide out. A
// clock that went backwards (n < head) leaves the head where it is.
func (w *window) advance(n int64) {
	if n <= w.head {
		return
	}
	if n-w.head >= numBuckets {
		w.buckets = [numBuckets]counts{}
		w.total = counts{}
		w.head = n
		return
	}
	for w.head < n {
		w.head++
		b := &w.buckets[w.head%numBuckets]
		w.total.calls -= b.calls
		w.total.failures -= b.failures
		w.total.slow -= b.slow
		*b = counts{}
	}
}

// tripped reports whether the window holds at least minCalls calls and its
// failure or slow-call rate has reached its threshold.
func (w *window) tripped(minCalls int, failureRate, slowCallRate float64) bool {
	t := w.total
	if t.calls == 0 || t.calls < minCalls {
		return false
	}
	n := float64(t.calls)
	return float64(t.failures)/n >= failureRate || float64(t.slow)/n >= slowCallRate
}
