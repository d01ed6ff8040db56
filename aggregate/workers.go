package aggregate

import (
	"sync"
	"sync/atomic"
	"time"
)

// Workers runs the calls that must run beside others on goroutines kept
// from one request to the next. A new goroutine starts with a small stack
// and grows it, copying, on its way down a call's stack of layers
// (cache, retries, breaker, client, transport): about 7 % of the gateway's
// CPU in a profile of the dashboard at 2 500 requests/s. A kept goroutine
// has grown its stack already.
//
// A call is handed to an idle worker if there is one; otherwise a new
// worker starts, up to max; beyond that the call runs on a goroutine of its
// own, as without Workers. A worker idle for idleFor ends. Close ends them
// all and waits: no worker outlives the Workers' owner.
type Workers struct {
	tasks chan func() // unbuffered: a send succeeds only into an idle worker
	done  chan struct{}
	wg    sync.WaitGroup
	n     atomic.Int32 // workers running
	max   int32
	idle  time.Duration
	once  sync.Once
}

// idleFor is how long a worker waits for a call before it ends.
const idleFor = 10 * time.Second

// NewWorkers returns Workers keeping at most limit goroutines (at least 1).
func NewWorkers(limit int) *Workers {
	return &Workers{tasks: make(chan func()), done: make(chan struct{}), max: int32(max(limit, 1)), idle: idleFor}
}

// Go runs f on a kept goroutine, or on a new one. A nil *Workers runs f on
// a new goroutine.
func (w *Workers) Go(f func()) {
	if w == nil {
		go f()
		return
	}
	select {
	case w.tasks <- f:
		return
	default:
	}
	select {
	case <-w.done: // closed: no new workers
		go f()
		return
	default:
	}
	if w.n.Add(1) > w.max {
		w.n.Add(-1)
		go f()
		return
	}
	w.wg.Add(1)
	go w.work(f)
}

// work runs f, then the calls handed to it, until it has been idle for
// w.idle or w is closed.
func (w *Workers) work(f func()) {
	defer w.wg.Done()
	defer w.n.Add(-1)
	f()
	idle := time.NewTimer(w.idle)
	defer idle.Stop()
	for {
		select {
		case f := <-w.tasks:
			f()
			idle.Reset(w.idle)
		case <-idle.C:
			return
		case <-w.done:
			return
		}
	}
}

// Close ends the idle workers and waits for the busy ones to finish their
// call. Calls handed over after Close run on goroutines of their own.
func (w *Workers) Close() {
	w.once.Do(func() { close(w.done) })
	w.wg.Wait()
}
