package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxUserID is the last user id requested; ids 1..maxUserID are cycled.
const maxUserID = 300

// side is one aggregator under test.
type side struct {
	name string // "baseline", "braid", "braid+trace1%", …
	url  string // base URL
	proc *child
}

// load is what every round of every side gets.
type load struct {
	path        func(id int) string // request path of user id
	concurrency int                 // workers: closed-loop clients, or the cap on requests in flight at a rate
	rate        float64             // requests per second on a fixed schedule; 0: closed loop
	warmup      time.Duration
	duration    time.Duration
}

// round is one side's measured window at one concurrency.
type round struct {
	side        string
	concurrency int
	window      time.Duration // from the first request sent to the last answer
	requests    int           // sent in the window (all answered or failed)
	ok          int
	statuses    map[int]int // non-200 answers by status
	errors      int         // no answer at all
	firstError  string
	latencies   []time.Duration // of the 200s
	gwTicks     int64           // the side's CPU over the window
	upTicks     int64           // the fake upstreams' CPU over the window
	upCalls     int64           // upstream requests over the window
}

// newClient returns the load's HTTP client: its own transport, an idle
// pool large enough for every worker, no compression.
func newClient(maxConcurrency int) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: maxConcurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// meter reads what a round measures besides latency: CPU of the side and
// of the fake upstreams, and the upstreams' request count.
type meter struct {
	client   *http.Client
	upstream *child
	callsURL string // a fake service's callsPath
}

// reading is one meter reading.
type reading struct {
	gw, up, calls int64
}

func (m *meter) read(ctx context.Context, gwPID int) (reading, error) {
	gw, err := cpuTicks(gwPID)
	if err != nil {
		return reading{}, err
	}
	up, err := cpuTicks(m.upstream.pid())
	if err != nil {
		return reading{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.callsURL, nil)
	if err != nil {
		return reading{}, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return reading{}, fmt.Errorf("reading the upstream call count: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reading{}, err
	}
	calls, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return reading{gw: gw, up: up, calls: calls}, err
}

// worker is one closed-loop client's tally.
type worker struct {
	requests, ok, errors int
	statuses             map[int]int
	firstError           string
	latencies            []time.Duration
}

// measure drives s with l: l.concurrency workers each send a request,
// wait for the answer and send the next, for l.warmup (not recorded) and
// then l.duration. Between the two, and after the last answer of the
// window, the workers are idle while CPU and upstream calls are read, so
// the readings enclose exactly the measured requests.
func measure(ctx context.Context, client *http.Client, m *meter, s side, l load) (round, error) {
	r := round{side: s.name, concurrency: l.concurrency, statuses: map[int]int{}}
	var next atomic.Int64
	if l.warmup > 0 {
		start := time.Now()
		drive(ctx, client, s.url, l, &next, start, start.Add(l.warmup))
	}
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	before, err := m.read(ctx, s.proc.pid())
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	workers := drive(ctx, client, s.url, l, &next, t0, t0.Add(l.duration))
	r.window = time.Since(t0)
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	after, err := m.read(ctx, s.proc.pid())
	if err != nil {
		return r, err
	}
	r.gwTicks, r.upTicks, r.upCalls = after.gw-before.gw, after.up-before.up, after.calls-before.calls
	for _, w := range workers {
		r.requests += w.requests
		r.ok += w.ok
		r.errors += w.errors
		for k, v := range w.statuses {
			r.statuses[k] += v
		}
		if r.firstError == "" {
			r.firstError = w.firstError
		}
		r.latencies = append(r.latencies, w.latencies...)
	}
	return r, nil
}

// drive runs l.concurrency workers that start requests until end, and
// returns when every answer is in. next numbers the requests (user ids
// cycle with it). Closed loop (l.rate 0): each worker sends a request,
// waits for the answer and sends the next. Open loop: request k is due at
// start + k/l.rate; a free worker takes the next due request and sends it
// at its time, or at once if it is late (all workers were busy), and its
// latency counts from when it was due; none is sent after end, so a side
// that cannot keep up answers fewer (its ok/s shows it). Every side then serves the same
// requests per second, so its CPU per request is measured at the same
// load, which closed-loop rounds cannot promise on a shared machine.
func drive(ctx context.Context, client *http.Client, base string, l load, next *atomic.Int64, start, end time.Time) []worker {
	workers := make([]worker, l.concurrency)
	var seq atomic.Int64 // open loop: the next request's place in the schedule
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		wg.Go(func() {
			for ctx.Err() == nil {
				at := time.Now()
				if l.rate > 0 {
					at = start.Add(time.Duration(float64(seq.Add(1)-1) / l.rate * float64(time.Second)))
					if !at.Before(end) || !time.Now().Before(end) { // past the window: a side that could not keep up sends fewer
						return
					}
					if d := time.Until(at); d > 0 && sleep(ctx, d) != nil {
						return
					}
				} else if !at.Before(end) {
					return
				}
				id := int(next.Add(1)%maxUserID) + 1
				status, err := get(ctx, client, base+l.path(id))
				w.tally(status, err, time.Since(at))
			}
		})
	}
	wg.Wait()
	return workers
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *worker) tally(status int, err error, d time.Duration) {
	w.requests++
	switch {
	case err != nil:
		w.errors++
		if w.firstError == "" {
			w.firstError = err.Error()
		}
	case status == http.StatusOK:
		w.ok++
		w.latencies = append(w.latencies, d)
	default:
		if w.statuses == nil {
			w.statuses = map[int]int{}
		}
		w.statuses[status]++
	}
}

// get sends GET url and reads the answer to the end, so that the
// connection is reused; it returns the status.
func get(ctx context.Context, client *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}
