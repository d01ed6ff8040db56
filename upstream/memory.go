package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// The memory budget bounds the bytes of upstream response bodies that the
// gateway holds at once, over every upstream of a Set, so that many large
// answers arriving together fail fast instead of growing the heap without
// bound.
//
// What it counts. A try reserves firstReserve bytes before it is sent; a
// try that cannot is rejected and the upstream receives nothing. When a
// 2xx answer's headers arrive, its reservation grows to what the client's
// buffer for the body takes: Content-Length+1 bytes when the length is
// known (a length over max_response_bytes is refused unread by the client
// and reserves nothing more); otherwise the buffer's capacity as it grows,
// reserved before each read that needs it. No reservation exceeds the
// upstream's max_response_bytes, so a budget at least that large always
// holds one answer. A reservation that cannot grow fails the try with a
// *RejectedError wrapping ErrMemoryBudget: at the headers (the upstream
// was called; the body is not read and its connection is closed) or
// part-way through a body of unknown length. Rejected tries are not
// retried and are not failures for the upstream's breaker. Non-2xx bodies
// (the client reads at most 4 KiB of them) and HEAD answers are not
// counted, nor is the garbage a growing buffer leaves behind.
//
// How long it is held. A failed try releases its reservation when it
// returns. A successful one shrinks to the capacity of the body it returns
// and is then held until the request that made the call is finished, if
// that request holds its calls' memory (see HoldMemory): until then the
// body belongs to the composite response being assembled and written.
// Under a context without HoldMemory it is released when the try returns,
// and the budget bounds only the bodies being read.
//
// No call waits for budget: holding part of a reservation while waiting
// for more would let concurrent calls deadlock one another, and the
// bulkhead already queues.

// defaultMemoryBudget is SetOptions.MemoryBudget's default: 256 MiB.
const defaultMemoryBudget = 256 << 20

// firstReserve is what a try reserves before it is sent: room for a small
// body, so that most answers need nothing more.
const firstReserve = 4 << 10

// ErrMemoryBudget means a response did not fit in the process-wide budget
// of upstream response bytes in flight (SetOptions.MemoryBudget): the call
// failed fast rather than grow the heap. It is the Err of a *RejectedError,
// so it also matches ErrUnavailable.
var ErrMemoryBudget = errors.New("upstream response memory budget exhausted")

// MemoryStats is a snapshot of a Set's memory budget.
type MemoryStats struct {
	Budget   int64 // bytes that may be reserved at once; 0 when the budget is off
	InUse    int64 // bytes reserved now
	Peak     int64 // the most bytes reserved at once since start
	Rejected int64 // tries rejected for want of budget since start
}

// memoryBudget is a Set's budget of response bytes, shared by every
// upstream in it.
type memoryBudget struct {
	limit    int64
	used     atomic.Int64 // bytes reserved now, never above limit
	peak     atomic.Int64 // the highest used
	rejected atomic.Int64 // reservations refused
}

// newMemoryBudget returns the budget for SetOptions.MemoryBudget n: the
// default for 0, none (nil) for a negative n.
func newMemoryBudget(n int64) *memoryBudget {
	switch {
	case n < 0:
		return nil
	case n == 0:
		n = defaultMemoryBudget
	}
	return &memoryBudget{limit: n}
}

// reserve takes n bytes from the budget, or none and false if they do not
// fit.
func (b *memoryBudget) reserve(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			b.rejected.Add(1)
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			b.notePeak(used + n)
			return true
		}
	}
}

// notePeak raises peak to used if it is lower.
func (b *memoryBudget) notePeak(used int64) {
	for {
		peak := b.peak.Load()
		if used <= peak || b.peak.CompareAndSwap(peak, used) {
			return
		}
	}
}

// release gives n reserved bytes back.
func (b *memoryBudget) release(n int64) { b.used.Add(-n) }

// stats returns a snapshot; the zero MemoryStats for a nil budget.
func (b *memoryBudget) stats() MemoryStats {
	if b == nil {
		return MemoryStats{}
	}
	return MemoryStats{Budget: b.limit, InUse: b.used.Load(), Peak: b.peak.Load(), Rejected: b.rejected.Load()}
}

// reservation is what one try holds of the budget. The try's goroutine
// grows it (the client reads the body on that goroutine); afterwards it is
// released once, by the try or by the request's hold.
//
// It is also the try's context: its parent's, plus itself under
// reservationKey, for memoryTransport to find (one object per try instead
// of a reservation and a context.WithValue).
type reservation struct {
	context.Context
	budget   *memoryBudget
	held     int64 // bytes reserved
	rejected bool  // the budget refused to grow it: the try failed for that
}

// cover grows the reservation to n bytes if it holds fewer, and reports
// whether it holds n. A refusal marks the try rejected.
func (r *reservation) cover(n int64) bool {
	if n <= r.held {
		return true
	}
	if !r.budget.reserve(n - r.held) {
		r.rejected = true
		return false
	}
	r.held = n
	return true
}

// shrink gives back what the reservation holds beyond n bytes.
func (r *reservation) shrink(n int64) {
	if n < r.held {
		r.budget.release(r.held - n)
		r.held = n
	}
}

// release gives back everything the reservation holds.
func (r *reservation) release() { r.shrink(0) }

// reservationKey is the context key of the current try's *reservation,
// set by the memory layer for memoryTransport.
type reservationKey struct{}

// Value returns r for reservationKey, and its parent's value otherwise.
func (r *reservation) Value(key any) any {
	if key == (reservationKey{}) {
		return r
	}
	return r.Context.Value(key)
}

// memoryLayer reserves budget for each try before it is made, rejects the
// try if none is left, and releases or hands over the reservation when the
// try returns. It sits just inside the bulkhead, around the client, whose
// transport (memoryTransport) grows the reservation as the body arrives.
func (b *memoryBudget) layer(name string) Middleware {
	return func(next Fetch) Fetch {
		return func(ctx context.Context, req *Request) (*Response, error) {
			r := &reservation{Context: ctx, budget: b}
			if !r.cover(firstReserve) {
				return nil, newError(name, req, &RejectedError{Err: ErrMemoryBudget})
			}
			resp, err := next(r, req)
			if r.rejected {
				// Whatever the client made of the refused read, the cause
				// is the budget.
				resp, err = nil, newError(name, req, &RejectedError{Err: ErrMemoryBudget})
			}
			if err != nil {
				r.release()
				return nil, err
			}
			r.shrink(int64(cap(resp.Body)))
			if h, ok := ctx.Value(holdKey{}).(*memoryHold); !ok || !h.keep(r) {
				r.release()
			}
			return resp, nil
		}
	}
}

// memoryTransport grows the reservation of the try whose request it
// carries, as the answer's body arrives; see the top of this file. A
// request without a reservation passes through untouched.
type memoryTransport struct {
	next  http.RoundTripper
	limit int64 // the upstream's max_response_bytes
}

func (t *memoryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	r, ok := req.Context().Value(reservationKey{}).(*reservation)
	if err != nil || !ok || req.Method == http.MethodHead || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, err
	}
	switch n := resp.ContentLength; {
	case n > t.limit: // refused unread by the client: ErrTooLarge
	case n >= 0:
		// The client reads a known length into one buffer of n+1 bytes
		// (room to see EOF without growing).
		if !r.cover(min(n+1, t.limit)) {
			resp.Body.Close() // unread: costs the connection, not the memory
			return nil, &RejectedError{Err: ErrMemoryBudget}
		}
	default:
		resp.Body = &budgetedBody{ReadCloser: resp.Body, r: r, max: t.limit}
	}
	return resp, nil
}

// budgetedBody is a body of unknown length that grows its reservation
// before each read to cover the bytes read so far plus the read's buffer:
// the client reads into the unused capacity of its growing buffer, so this
// is that buffer's capacity. It never reserves more than max, the
// upstream's max_response_bytes (the client reads one byte more to see that
// a body is too large, and fails it).
type budgetedBody struct {
	io.ReadCloser
	r    *reservation
	read int64 // bytes read so far
	max  int64
}

func (b *budgetedBody) Read(p []byte) (int, error) {
	if !b.r.cover(min(b.read+int64(len(p)), b.max)) {
		return 0, &RejectedError{Err: ErrMemoryBudget}
	}
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	return n, err
}

// holdKey is the context key of a request's *memoryHold.
type holdKey struct{}

// memoryHold keeps the reservations of a request's successful calls until
// the request is finished.
type memoryHold struct {
	mu     sync.Mutex // guards the fields below
	held   []*reservation
	closed bool // released: reservations handed over now are let go at once
	// first backs held for the usual number of calls: one allocation
	// per request instead of one per growth.
	first [8]*reservation
}

// HoldMemory returns a context under which the memory budget reservations
// of successful upstream calls (see SetOptions.MemoryBudget) are held until
// release is called, instead of being released when each call returns, and
// the function to call when the request no longer needs the bodies those
// calls returned: after the response assembled from them has been written.
// release may be called more than once; a call that succeeds after release
// gives its reservation back at once (a background cache refresh, say).
//
// A route handler holds its calls' memory like this:
//
//	ctx, release := upstream.HoldMemory(r.Context())
//	defer release()
//	res, err := plan.Execute(ctx, params) // ...then assemble and write
func HoldMemory(ctx context.Context) (context.Context, func()) {
	h := &memoryHold{}
	h.held = h.first[:0]
	return context.WithValue(ctx, holdKey{}, h), h.release
}

// keep takes r over and reports true, or false if the hold was released.
func (h *memoryHold) keep(r *reservation) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.held = append(h.held, r)
	return true
}

// release gives back every reservation held; later calls do nothing.
func (h *memoryHold) release() {
	h.mu.Lock()
	held := h.held
	h.held, h.closed = nil, true
	h.mu.Unlock()
	for _, r := range held {
		r.release()
	}
}
