package upstream

import (
	"context"
	"net"
	"slices"
	"sync"
	"time"
)

// staleCheckAfter is how long a lean connection may sit idle before it is
// peeked at (see leanConn.alive) before use: a connection that was just
// used is almost always still open, and peeking costs a system call.
const staleCheckAfter = time.Second

// leanPool holds one upstream's lean connections: at most maxConns open
// (dialing, in use or idle), of which at most maxIdle idle. Idle
// connections are reused last in, first out, so that the pool shrinks back
// when a burst is over; one idle for idleTimeout is closed when met, and by
// a timer that runs only while the pool has idle connections. No goroutine
// belongs to the pool.
type leanPool struct {
	dialer      net.Dialer
	addr        string // host:port
	maxConns    int
	maxIdle     int
	idleTimeout time.Duration

	mu   sync.Mutex  // guards the fields below
	idle []*leanConn // oldest first; never non-empty while someone waits
	open int         // connections dialing, in use or idle
	// waiters are the callers waiting for a connection, first come first
	// served: each is handed a connection, or nil for leave to dial one.
	waiters  []chan *leanConn
	sweep    *time.Timer // closes expired idle connections
	sweeping bool        // sweep is armed
}

// get returns an idle connection, a new one, or the first to be given back
// if max_conns are open, waiting under ctx. check asks for an idle
// connection to be peeked at before it is returned, however briefly it
// sat idle.
func (p *leanPool) get(ctx context.Context, check bool) (*leanConn, error) {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			break // still locked
		}
		pc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		idle := time.Since(pc.idleAt)
		if idle >= p.idleTimeout || (check || idle >= staleCheckAfter) && !pc.alive() {
			p.discard(pc)
			continue
		}
		return pc, nil
	}
	if p.open < p.maxConns {
		p.open++
		p.mu.Unlock()
		return p.dial(ctx)
	}
	ch := make(chan *leanConn, 1)
	p.waiters = append(p.waiters, ch)
	p.mu.Unlock()
	select {
	case pc := <-ch:
		if pc == nil {
			return p.dial(ctx)
		}
		return pc, nil
	case <-ctx.Done():
		p.mu.Lock()
		i := slices.Index(p.waiters, ch)
		if i >= 0 {
			p.waiters = slices.Delete(p.waiters, i, i+1)
		}
		p.mu.Unlock()
		if i < 0 { // handed something meanwhile: pass it on
			if pc := <-ch; pc != nil {
				p.put(pc)
			} else {
				p.releaseSlot()
			}
		}
		return nil, context.Cause(ctx)
	}
}

// dial opens a connection in a slot already counted in open, and gives the
// slot back if it cannot.
func (p *leanPool) dial(ctx context.Context) (*leanConn, error) {
	conn, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		p.releaseSlot()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	return newLeanConn(conn), nil
}

// put gives back a connection whose exchange ended cleanly: to the first
// waiter, else to the idle list if it has room, else it is closed.
func (p *leanPool) put(pc *leanConn) {
	pc.reused = true
	pc.idleAt = time.Now()
	p.mu.Lock()
	if ch := p.popWaiter(); ch != nil {
		p.mu.Unlock()
		ch <- pc
		return
	}
	if len(p.idle) >= p.maxIdle {
		p.open--
		p.mu.Unlock()
		pc.conn.Close()
		return
	}
	p.idle = append(p.idle, pc)
	if !p.sweeping {
		p.sweeping = true
		if p.sweep == nil {
			p.sweep = time.AfterFunc(p.idleTimeout, p.sweepIdle)
		} else {
			p.sweep.Reset(p.idleTimeout)
		}
	}
	p.mu.Unlock()
}

// discard closes a connection that is not to be reused and frees its slot.
func (p *leanPool) discard(pc *leanConn) {
	pc.conn.Close()
	p.releaseSlot()
}

// releaseSlot frees a slot of max_conns: it goes to the first waiter, who
// dials, if there is one.
func (p *leanPool) releaseSlot() {
	p.mu.Lock()
	ch := p.popWaiter()
	if ch == nil {
		p.open--
	}
	p.mu.Unlock()
	if ch != nil {
		ch <- nil
	}
}

// popWaiter removes and returns the first waiter, or nil. p.mu is held.
func (p *leanPool) popWaiter() chan *leanConn {
	if len(p.waiters) == 0 {
		return nil
	}
	ch := p.waiters[0]
	p.waiters = slices.Delete(p.waiters, 0, 1)
	return ch
}

// sweepIdle closes the idle connections past idleTimeout, and rearms the
// timer for the oldest of the rest.
func (p *leanPool) sweepIdle() {
	now := time.Now()
	p.mu.Lock()
	expired := p.takeIdle(func(pc *leanConn) bool { return now.Sub(pc.idleAt) >= p.idleTimeout })
	if len(p.idle) > 0 {
		p.sweep.Reset(p.idle[0].idleAt.Add(p.idleTimeout).Sub(now))
	} else {
		p.sweeping = false
	}
	p.mu.Unlock()
	closeAll(expired)
}

// closeIdle closes every idle connection.
func (p *leanPool) closeIdle() {
	p.mu.Lock()
	idle := p.takeIdle(func(*leanConn) bool { return true })
	if p.sweeping {
		p.sweep.Stop()
		p.sweeping = false
	}
	p.mu.Unlock()
	closeAll(idle)
}

// closeIdleSince closes the idle connections that were put in the pool at
// or before t: they have sat idle at least as long as one found closed.
func (p *leanPool) closeIdleSince(t time.Time) {
	p.mu.Lock()
	idle := p.takeIdle(func(pc *leanConn) bool { return !pc.idleAt.After(t) })
	p.mu.Unlock()
	closeAll(idle)
}

// takeIdle removes the oldest idle connections for which old is true, up to
// the first for which it is not, and frees their slots. p.mu is held; no
// one waits while there are idle connections, so the slots need not be
// handed on.
func (p *leanPool) takeIdle(old func(*leanConn) bool) []*leanConn {
	n := 0
	for n < len(p.idle) && old(p.idle[n]) {
		n++
	}
	if n == 0 {
		return nil
	}
	taken := slices.Clone(p.idle[:n])
	p.idle = slices.Delete(p.idle, 0, n)
	p.open -= n
	return taken
}

func closeAll(conns []*leanConn) {
	for _, pc := range conns {
		pc.conn.Close()
	}
}
