package aggregate

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/braidgw/braid/cache"
)

// AppendJSON appends the response document to dst: one object whose members
// are the plan's output calls in declared order. A call's body is spliced in
// as the upstream sent it unless a batch join stitches into it; a failed
// optional call is null.
func (r *Result) AppendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, openBrace...)
	n := 0
	for i, cl := range r.plan.calls {
		if !cl.output {
			continue
		}
		if n > 0 {
			dst = append(dst, comma...)
		}
		n++
		body, err := r.member(i)
		if err != nil {
			return nil, err
		}
		dst = append(append(dst, cl.key...), body...)
	}
	return append(dst, closeBrace...), nil
}

// Parts appends to dst the response document that AppendJSON builds, as
// the byte slices to write one after another without copying them into
// one buffer, and returns them with their total length. The slices alias
// the upstream bodies and the plan: write them, do not modify them. Only a
// call that a batch join stitches into gets a new body.
func (r *Result) Parts(dst [][]byte) ([][]byte, int, error) {
	dst = slices.Grow(dst, 2+3*len(r.plan.calls)) // braces, and a comma, key and body per call
	size := 0
	add := func(b []byte) {
		dst = append(dst, b)
		size += len(b)
	}
	add(openBrace)
	n := 0
	for i, cl := range r.plan.calls {
		if !cl.output {
			continue
		}
		if n > 0 {
			add(comma)
		}
		n++
		body, err := r.member(i)
		if err != nil {
			return nil, 0, err
		}
		add(cl.key)
		add(body)
	}
	add(closeBrace)
	return dst, size, nil
}

// member returns the value of output call i in the response document: its
// body, stitched into by batch joins, or null.
func (r *Result) member(i int) ([]byte, error) {
	if p := &r.parts[i]; p.err != nil || len(p.body) == 0 {
		return null, nil
	}
	body, err := r.stitched(i)
	if err != nil {
		cl := r.plan.calls[i]
		return nil, &CallError{Call: cl.Name, Upstream: cl.Upstream, Err: fmt.Errorf("%w: stitch: %v", ErrBadData, err)}
	}
	return body, nil
}

// The fixed pieces of a response document.
var (
	openBrace  = []byte("{")
	closeBrace = []byte("}")
	comma      = []byte(",")
	null       = []byte("null")
)

// Header returns the response headers of the named call's answer: nil if
// the call failed, is unknown, is a batch call, or was answered from a
// cache (which keeps bodies only).
func (r *Result) Header(call string) http.Header {
	i, ok := r.plan.byName[call]
	if !ok {
		return nil
	}
	return r.parts[i].header
}

// stitched returns call i's body with every batch join into it applied.
func (r *Result) stitched(i int) ([]byte, error) {
	body := r.parts[i].body
	for _, b := range r.plan.stitchs[i] {
		var err error
		if body, err = r.plan.calls[b].batch.stitch(body, r.parts[b].batch); err != nil {
			return nil, err
		}
	}
	return body, nil
}

// Degraded lists the optional calls that failed, in declared order.
func (r *Result) Degraded() []string {
	var names []string
	for i, cl := range r.plan.calls {
		if r.parts[i].err != nil {
			names = append(names, cl.Name)
		}
	}
	return names
}

// Errors returns the errors of the optional calls that failed.
func (r *Result) Errors() []error {
	var errs []error
	for i := range r.parts {
		if err := r.parts[i].err; err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Missing is a batch call's keys that were asked for and not returned;
// they were stitched as null.
type Missing struct {
	Call string
	Keys []string
}

// MissingKeys reports the missing keys of each batch call that had any, in
// declared order.
func (r *Result) MissingKeys() []Missing {
	var m []Missing
	for i, cl := range r.plan.calls {
		if b := r.parts[i].batch; b != nil && len(b.missing) > 0 {
			m = append(m, Missing{Call: cl.Name, Keys: b.missing})
		}
	}
	return m
}

// CallTiming is how long one call took, for Server-Timing and logs.
type CallTiming struct {
	Call     string
	Duration time.Duration
	Failed   bool
	Err      error  // why it failed, when it did
	Cache    string // how the cache answered a cached call: "hit l1", "miss", "40/50 keys"; "" otherwise
}

// Timings returns each call's duration in declared order, measured from
// when its dependencies were ready.
func (r *Result) Timings() []CallTiming {
	t := make([]CallTiming, len(r.parts))
	for i, cl := range r.plan.calls {
		t[i] = CallTiming{Call: cl.Name, Duration: r.parts[i].elapsed, Failed: r.parts[i].err != nil, Err: r.parts[i].err}
	}
	for _, e := range r.CacheStatuses() {
		i := r.plan.byName[e.Call]
		switch {
		case e.Batch:
			t[i].Cache = fmt.Sprintf("%d/%d keys", e.Hits, e.Keys)
		case e.Status == cache.HitL1:
			t[i].Cache = "hit l1"
		case e.Status == cache.HitL2:
			t[i].Cache = "hit l2"
		default:
			t[i].Cache = e.Status.String()
		}
	}
	return t
}

// CriticalPath is how long the calls kept the request: from the start of
// Execute until the last call ended. The rest of a request's time is the
// gateway's own.
func (r *Result) CriticalPath() time.Duration {
	var end time.Duration
	for i := range r.parts {
		end = max(end, r.parts[i].offset+r.parts[i].elapsed)
	}
	return end
}

// CacheEntry is how a cached call was answered, for the Cache-Status
// header: a plain call's Status, or a batch call's keys and hits.
type CacheEntry struct {
	Call   string
	Status cache.Status // a plain call's
	Batch  bool
	Keys   int  // a batch call's distinct keys
	Hits   int  // of which the cache answered
	Stale  bool // a batch call served stale values after its fetch failed
}

// CacheStatuses lists the cached calls that answered, in declared order;
// none when the plan has no cache.
func (r *Result) CacheStatuses() []CacheEntry {
	if r.plan.cache == nil {
		return nil
	}
	var out []CacheEntry
	for i, cl := range r.plan.calls {
		p := &r.parts[i]
		if cl.cache == nil || p.err != nil {
			continue
		}
		e := CacheEntry{Call: cl.Name, Status: p.cache}
		if b := p.batch; cl.batch != nil {
			if b == nil {
				continue
			}
			e.Batch, e.Keys, e.Hits, e.Stale = true, b.keys, b.hits, b.stale
		}
		out = append(out, e)
	}
	return out
}
