package observability

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// batchOptions are the batching settings of the OpenTelemetry
// specification's batch span processor (OTEL_BSP_*), with its defaults.
type batchOptions struct {
	maxQueue  int           // spans waiting at most; more are dropped
	batchSize int           // spans per export at most
	delay     time.Duration // longest a span waits for its batch to fill
	timeout   time.Duration // per export
}

var defaultBatchOptions = batchOptions{maxQueue: 2048, batchSize: 512, delay: 5 * time.Second, timeout: 30 * time.Second}

// spanBatcher is Braid's batch span processor. Ended spans are appended to
// a queue under a mutex and exported from one goroutine, woken when a
// batch is full, when the delay has passed, or to flush. The SDK's batch
// span processor hands every span to its goroutine over a channel instead,
// waking it once per span: nine times per traced dashboard request, which
// at 100 % sampling cost more than exporting. Same settings, same
// behaviour otherwise: spans beyond the queue are dropped (counted, and
// reported through otel.Handle), Shutdown and ForceFlush export what is
// queued.
type spanBatcher struct {
	exp sdktrace.SpanExporter
	o   batchOptions
	// ctx is cancelled by a Shutdown whose own context ends first: an
	// export under way is abandoned rather than outliving the provider.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	queue   []sdktrace.ReadOnlySpan
	spare   []sdktrace.ReadOnlySpan // the last export's slice, for the next queue
	unsent  int                     // spans dropped since the last report
	stopped bool

	kick     chan struct{}      // cap 1: a full batch is waiting
	flush    chan chan struct{} // ForceFlush: export all, then close the channel
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	// tick replaces the delay's ticker in tests.
	tick <-chan time.Time
	// Problems (drops, failed exports) are reported through otel.Handle at
	// most once per reportEvery, with how many were left unsaid: while a
	// collector is down every batch fails, and the log should not carry a
	// line per batch. Touched by the exporting goroutine only.
	now        func() time.Time
	lastReport time.Time
	unsaid     int

	spanCounts
}

// spanCounts are the metrics' totals of sampled spans: sent, dropped from
// a full queue, lost in failed exports.
type spanCounts struct {
	exported, dropped, failed atomic.Uint64
}

// reportEvery is the least time between two reported problems.
const reportEvery = 10 * time.Second

func newSpanBatcher(exp sdktrace.SpanExporter, o batchOptions) *spanBatcher {
	b := &spanBatcher{exp: exp, o: o, kick: make(chan struct{}, 1), flush: make(chan chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{}), now: time.Now}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b
}

// start runs the exporting goroutine, until Shutdown.
func (b *spanBatcher) start() *spanBatcher {
	tick := b.tick
	var t *time.Ticker
	if tick == nil {
		t = time.NewTicker(b.o.delay)
		tick = t.C
	}
	go func() {
		defer close(b.done)
		if t != nil {
			defer t.Stop()
		}
		for {
			select {
			case <-b.kick:
				b.exportQueued(true)
			case <-tick:
				b.exportQueued(false)
			case reply := <-b.flush:
				b.exportQueued(false)
				close(reply)
			case <-b.stop:
				b.exportQueued(false)
				return
			}
		}
	}()
	return b
}

// OnStart does nothing: spans are handled when they end.
func (*spanBatcher) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues a sampled span, and wakes the exporter when it completes a
// batch.
func (b *spanBatcher) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	b.mu.Lock()
	if b.stopped || len(b.queue) >= b.o.maxQueue {
		b.unsent++
		b.mu.Unlock()
		b.dropped.Add(1)
		return
	}
	b.queue = append(b.queue, s)
	full := len(b.queue) == b.o.batchSize
	b.mu.Unlock()
	if full {
		select {
		case b.kick <- struct{}{}:
		default: // already woken
		}
	}
}

// exportQueued exports what is queued, a batch at a time: only full
// batches when fullOnly (the rest waits for more spans or the delay),
// else everything.
func (b *spanBatcher) exportQueued(fullOnly bool) {
	b.mu.Lock()
	spans, dropped := b.queue, b.unsent
	n := len(spans)
	if fullOnly {
		n -= n % b.o.batchSize
	}
	if n == 0 && dropped == 0 {
		b.mu.Unlock()
		return
	}
	b.queue = append(b.spare[:0], spans[n:]...)
	b.spare, b.unsent = nil, 0
	b.mu.Unlock()
	spans = spans[:n]
	if dropped > 0 {
		b.report(fmt.Errorf("tracing: %d spans dropped: more than %d were waiting for export", dropped, b.o.maxQueue))
	}
	for rest := spans; len(rest) > 0; {
		n := min(len(rest), b.o.batchSize)
		ctx, cancel := context.WithTimeout(b.ctx, b.o.timeout)
		if err := b.exp.ExportSpans(ctx, rest[:n]); err != nil {
			b.failed.Add(uint64(n))
			b.report(fmt.Errorf("tracing: exporting %d spans: %w", n, err))
		} else {
			b.exported.Add(uint64(n))
		}
		cancel()
		rest = rest[n:]
	}
	clear(spans[:cap(spans)]) // let the spans go, the ones moved to the queue too
	b.mu.Lock()
	b.spare = spans[:0]
	b.mu.Unlock()
}

// report hands err to otel.Handle unless a problem was reported less
// than reportEvery ago; then it is counted, and told with the next report.
func (b *spanBatcher) report(err error) {
	now := b.now()
	if !b.lastReport.IsZero() && now.Sub(b.lastReport) < reportEvery {
		b.unsaid++
		return
	}
	if b.unsaid > 0 {
		err = fmt.Errorf("%w (and %d more problems in the %s before)", err, b.unsaid, now.Sub(b.lastReport).Round(time.Second))
	}
	b.lastReport, b.unsaid = now, 0
	otel.Handle(err)
}

// ForceFlush exports everything queued and returns when it is sent, or
// when ctx ends.
func (b *spanBatcher) ForceFlush(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case b.flush <- reply:
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports what is queued, stops the goroutine and shuts the
// exporter down. Spans ending later are dropped. If ctx ends first, the
// export under way is abandoned; the goroutine has ended either way when
// Shutdown returns.
func (b *spanBatcher) Shutdown(ctx context.Context) error {
	first := false
	b.stopOnce.Do(func() { first = true })
	if !first {
		return nil
	}
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	close(b.stop)
	var err error
	select {
	case <-b.done:
	case <-ctx.Done():
		err = ctx.Err()
		b.cancel()
		<-b.done
	}
	b.cancel()
	return errors.Join(err, b.exp.Shutdown(ctx))
}
