package aggregate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/braidgw/braid/cache"
	"github.com/braidgw/braid/observability"
	"github.com/braidgw/braid/upstream"
)

// Result is the outcome of executing a plan for one request: each call's raw
// body or error. It is written out with AppendJSON.
type Result struct {
	plan  *Plan
	start time.Time // when Execute began
	parts []part
}

// part is one call's outcome. It is written only by the call's own
// goroutine, before the call's done channel is closed.
type part struct {
	body    []byte
	header  http.Header // the answer's headers; nil from a cache
	batch   *batchResult
	err     error
	offset  time.Duration // from the start of Execute to the call's start
	elapsed time.Duration
	cache   cache.Status // where a cached call's answer came from
}

// Execute runs the plan: every call starts at once and waits only for the
// calls it references; a batch call waits for the call holding its keys.
// params holds the route's validated parameters.
//
// A failed required call cancels the rest and is returned as a *CallError.
// A failed optional call leaves its part null; the Result lists it in
// Degraded.
func (p *Plan) Execute(ctx context.Context, params map[string]string) (*Result, error) {
	res := &Result{plan: p, start: time.Now(), parts: make([]part, len(p.calls))}
	done := make([]chan struct{}, len(p.calls))
	for i := range done {
		done[i] = make(chan struct{})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(len(p.calls)) // every call may be waiting for another at once
	for i, cl := range p.calls {
		g.Go(func() error {
			defer close(done[i])
			err := res.runSafe(gctx, cl, done, params)
			if err == nil {
				return nil
			}
			res.parts[i].err = &CallError{Call: cl.Name, Upstream: cl.Upstream, Err: err}
			if cl.Optional {
				return nil
			}
			return res.parts[i].err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, res.firstFailure(err)
	}
	return res, nil
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
func (r *Result) runSafe(ctx context.Context, cl *call, done []chan struct{}, params map[string]string) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v\n%s", ErrPanic, v, debug.Stack())
		}
	}()
	return r.run(ctx, cl, done, params)
}

// run waits for the call's dependencies, builds its request and makes it.
func (r *Result) run(ctx context.Context, cl *call, done []chan struct{}, params map[string]string) (err error) {
	for _, d := range cl.deps {
		select {
		case <-done[d]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := r.parts[d].err; err != nil {
			return fmt.Errorf("%w: %q: %w", ErrDependencyFailed, r.plan.calls[d].Name, err)
		}
	}
	start := time.Now()
	r.parts[cl.idx].offset = start.Sub(r.start)
	defer func() { r.parts[cl.idx].elapsed = time.Since(start) }()
	if obs := r.plan.observer; obs != nil {
		var end func(observability.CallEnd)
		ctx, end = obs.StartCall(ctx, r.plan.route, cl.Name, cl.Upstream)
		defer func() { end(r.report(cl, err)) }()
	}
	req, err := r.request(cl, params)
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
			if res, err = cl.batch.run(ctx, r.plan.cache, cl, req, callValues{params: params, res: r}, keys); err != nil {
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

func (r *Result) request(cl *call, params map[string]string) (*upstream.Request, error) {
	vals := callValues{params: params, res: r}
	path, err := cl.path.renderPath(vals)
	if err != nil {
		return nil, err
	}
	var q url.Values
	for _, qt := range cl.query {
		s, ok, err := qt.tmpl.renderValue(vals)
		if err != nil {
			return nil, err
		}
		if ok {
			if q == nil {
				q = url.Values{}
			}
			q.Set(qt.name, s)
		}
	}
	req := &upstream.Request{Method: cl.Method, Path: path, Query: q}
	if cl.cache != nil && cl.batch == nil {
		if err := cl.cache.render(req, vals); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// callValues resolves template references against the request's parameters
// and the results of finished calls.
type callValues struct {
	params map[string]string
	res    *Result
}

func (v callValues) value(r ref) (string, bool, error) {
	if r.param != "" {
		s, ok := v.params[r.param]
		return s, ok, nil
	}
	body := v.res.parts[v.res.plan.byName[r.path.call]].body
	var leaf []byte
	if err := collect(body, r.path.segs, func(l []byte) error { leaf = l; return nil }); err != nil {
		return "", false, v.refuse(r, "cannot be read: "+err.Error())
	}
	if leaf == nil {
		return "", false, v.refuse(r, "is missing or null")
	}
	s, err := scalarText(leaf)
	if err != nil {
		return "", false, v.refuse(r, "cannot be used: "+err.Error())
	}
	return s, true, nil
}

// refuse blames a route parameter on the client and a field of a call's
// result on that call's upstream.
func (v callValues) refuse(r ref, msg string) error {
	if r.param != "" {
		return &InputError{Param: r.param, Msg: msg}
	}
	src := v.res.plan.calls[v.res.plan.byName[r.path.call]]
	return &DataError{Call: src.Name, Upstream: src.Upstream, Ref: r.String(), Msg: msg}
}
