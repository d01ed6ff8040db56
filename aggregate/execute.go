package aggregate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/braidgw/braid/cache"
	"github.com/braidgw/braid/observability"
	"github.com/braidgw/braid/upstream"
)

// Result is the outcome of executing a plan for one request: each call's raw
// body or error. It is written out with AppendJSON.
type Result struct {
	plan   *Plan
	start  time.Time         // when Execute began
	params map[string]string // the route's parameters, for templates
	parts  []part
}

// part is one call's outcome. It is written only by the goroutine running
// the call, before the call is counted as ended (see execution.finish).
type part struct {
	// req is the call's request. It lives here to save an allocation per
	// call; a stack may keep it after the call ends (a hedge still in
	// flight, a background refresh), so parts are never reused.
	req     upstream.Request
	body    []byte
	header  http.Header // the answer's headers; nil from a cache
	batch   *batchResult
	err     error
	offset  time.Duration // from the start of Execute to the call's start
	elapsed time.Duration
	cache   cache.Status // where a cached call's answer came from
	waiting int32        // calls it references that have not ended; only through sync/atomic
}

// Execute runs the plan: every call starts as soon as the calls it
// references have ended (a batch call waits for the call holding its keys),
// and independent calls run at once. params holds the route's validated
// parameters.
//
// A failed required call cancels the rest and is returned as a *CallError.
// A failed optional call leaves its part null; the Result lists it in
// Degraded.
//
// A goroutine is started only for a call that must run beside another:
// one of the calls that are ready together runs on the goroutine that made
// them ready (Execute's own for the calls that reference nothing), so a
// plan of n independent calls starts n-1 goroutines and a chain starts
// none.
func (p *Plan) Execute(ctx context.Context, params map[string]string) (*Result, error) {
	x := &execution{Result: Result{plan: p, start: time.Now(), params: params, parts: make([]part, len(p.calls))}}
	if p.cancels {
		ctx, x.cancel = context.WithCancel(ctx)
		defer x.cancel()
	}
	for i, cl := range p.calls {
		x.parts[i].waiting = int32(len(cl.deps))
	}
	next := -1
	for _, i := range p.roots {
		next = x.dispatch(ctx, next, i)
	}
	x.work(ctx, next)
	x.wg.Wait()
	if x.first != nil { // every write to first happened before wg.Wait returned
		return nil, x.firstFailure(x.first)
	}
	return &x.Result, nil
}

// execution is one run of a plan: the Result being filled and what
// schedules its calls.
type execution struct {
	Result
	cancel context.CancelFunc // cancels the calls when a required one fails; nil when nothing would be left to cancel
	wg     sync.WaitGroup     // counts the goroutines started for calls
	mu     sync.Mutex         // guards first
	first  error              // the first required call to fail, in time
}

// work runs call i and then, on the same goroutine, a call that its end
// made ready, until its end makes none ready. i < 0 runs nothing.
func (x *execution) work(ctx context.Context, i int) {
	for i >= 0 {
		i = x.finish(ctx, i, x.runSafe(ctx, x.plan.calls[i]))
	}
}

// dispatch is handed the ready calls one by one, next, each time with the
// call it kept the time before (kept, -1 for none): it starts a goroutine
// for kept and keeps next instead. The call kept last is left for the
// caller to run on its own goroutine.
func (x *execution) dispatch(ctx context.Context, kept, next int) int {
	if kept >= 0 {
		x.wg.Add(1)
		x.plan.workers.Go(func() {
			defer x.wg.Done()
			x.work(ctx, kept)
		})
	}
	return next
}

// finish records how call i ended and counts it as ended for the calls
// that reference it. Of those it made ready, it returns one for the
// caller to run next (-1: none) and starts a goroutine for each other. A
// ready call that cannot run, because a call it references failed or the
// calls were cancelled, ends here without running.
func (x *execution) finish(ctx context.Context, i int, err error) int {
	if err != nil {
		x.fail(i, err)
	}
	next := -1
	for _, d := range x.plan.calls[i].dependents {
		if atomic.AddInt32(&x.parts[d].waiting, -1) > 0 {
			continue
		}
		if err := x.blocked(ctx, x.plan.calls[d]); err != nil {
			if d = x.finish(ctx, d, err); d < 0 {
				continue
			}
		}
		next = x.dispatch(ctx, next, d)
	}
	return next
}

// fail records err as call i's failure. The first required call to fail
// cancels the others.
func (x *execution) fail(i int, err error) {
	cl := x.plan.calls[i]
	ce := &CallError{Call: cl.Name, Upstream: cl.Upstream, Err: err}
	x.parts[i].err = ce
	if cl.Optional {
		return
	}
	x.mu.Lock()
	first := x.first == nil
	if first {
		x.first = ce
	}
	x.mu.Unlock()
	if first && x.cancel != nil {
		x.cancel()
	}
}

// blocked returns why call cl, whose references have all ended, cannot
// run: the end of ctx (the calls were cancelled, or the request is over),
// or else the first of them that failed. Nil: it can.
func (r *Result) blocked(ctx context.Context, cl *call) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, d := range cl.deps {
		if err := r.parts[d].err; err != nil {
			return fmt.Errorf("%w: %q: %w", ErrDependencyFailed, r.plan.calls[d].Name, err)
		}
	}
	return nil
}

// firstFailure picks, among the required calls that failed for a reason of
// their own (not the cancellation that the first failure caused), the first
// declared, so that the error a client sees does not depend on which call
// happened to fail first.
func (r *Result) firstFailure(first error) error {
	for i, cl := range r.plan.calls {
		err := r.parts[i].err
		collateral := errors.Is(err, context.Canceled) || err != first && errors.Is(err, first)
		if !cl.Optional && err != nil && !collateral {
			return err
		}
	}
	return first
}

// runSafe is run, with a panic turned into an error wrapping ErrPanic: a
// bug met by one request must not take the gateway down.
func (r *Result) runSafe(ctx context.Context, cl *call) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v\n%s", ErrPanic, v, debug.Stack())
		}
	}()
	return r.run(ctx, cl)
}

// run builds the call's request and makes it. The calls it references
// have ended, successfully.
func (r *Result) run(ctx context.Context, cl *call) (err error) {
	start := time.Now()
	r.parts[cl.idx].offset = start.Sub(r.start)
	defer func() { r.parts[cl.idx].elapsed = time.Since(start) }()
	if obs := r.plan.observer; obs != nil {
		var end func(observability.CallEnd)
		ctx, end = obs.StartCall(ctx, r.plan.route, cl.Name, cl.Upstream)
		defer func() { end(r.report(cl, err)) }()
	}
	req, err := r.request(cl)
	if err != nil {
		return err
	}
	if cl.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cl.Timeout)
		defer cancel()
	}
	if cl.batch != nil {
		keys, err := cl.batch.collectKeys(r.parts[cl.batch.source].body)
		if err != nil {
			return err
		}
		res := &batchResult{}
		if len(keys) > 0 {
			if res, err = cl.batch.run(ctx, r.plan.cache, cl, req, r, keys); err != nil {
				return err
			}
		}
		r.parts[cl.idx].batch = res
		return nil
	}
	resp, err := cl.fetch(ctx, req)
	if err != nil {
		return err
	}
	r.parts[cl.idx].body = trimValue(resp.Body)
	r.parts[cl.idx].header = resp.Header
	r.parts[cl.idx].cache = resp.Cache
	return nil
}

// report describes how call cl ended, for the observer.
func (r *Result) report(cl *call, err error) observability.CallEnd {
	e := observability.CallEnd{Err: err, Optional: cl.Optional, Batch: cl.batch != nil}
	if b := r.parts[cl.idx].batch; b != nil {
		e.Keys, e.Chunks, e.Missing = b.keys, b.chunks, len(b.missing)
	}
	return e
}

// request renders call cl's request into its part.
func (r *Result) request(cl *call) (*upstream.Request, error) {
	path, err := cl.path.renderPath(r)
	if err != nil {
		return nil, err
	}
	q := cl.staticQuery // constant queries are built once, at compile time
	if q == nil {
		for _, qt := range cl.query {
			s, ok, err := qt.tmpl.renderValue(r)
			if err != nil {
				return nil, err
			}
			if ok {
				if q == nil {
					q = make(url.Values, len(cl.query))
				}
				q.Set(qt.name, s)
			}
		}
	}
	req := &r.parts[cl.idx].req
	*req = upstream.Request{Method: cl.Method, Path: path, Query: q, EncodedQuery: cl.staticEncoded}
	if cl.cache != nil && cl.batch == nil {
		if err := cl.cache.render(req, r); err != nil {
			return nil, err
		}
	}
	return req, nil
}

var _ values = (*Result)(nil)

// value resolves a template reference against the request's parameters
// and the results of the calls that have ended: a *Result is the values of
// its calls' templates.
func (r *Result) value(rf ref) (string, bool, error) {
	if rf.param != "" {
		s, ok := r.params[rf.param]
		return s, ok, nil
	}
	body := r.parts[r.plan.byName[rf.path.call]].body
	var leaf []byte
	if err := collect(body, rf.path.segs, func(l []byte) error { leaf = l; return nil }); err != nil {
		return "", false, r.refuse(rf, "cannot be read: "+err.Error())
	}
	if leaf == nil {
		return "", false, r.refuse(rf, "is missing or null")
	}
	s, err := scalarText(leaf)
	if err != nil {
		return "", false, r.refuse(rf, "cannot be used: "+err.Error())
	}
	return s, true, nil
}

// refuse blames a route parameter on the client and a field of a call's
// result on that call's upstream.
func (r *Result) refuse(rf ref, msg string) error {
	if rf.param != "" {
		return &InputError{Param: rf.param, Msg: msg}
	}
	src := r.plan.calls[r.plan.byName[rf.path.call]]
	return &DataError{Call: src.Name, Upstream: src.Upstream, Ref: rf.String(), Msg: msg}
}
