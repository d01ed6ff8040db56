package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Log output is written in batches. One write(2) per record was 2-4 % of
// the gateway's CPU serving dashboards (the access-log line of every
// request; a write to a file cost 3-9 µs on the benchmark VM, more to a
// pipe read by a container runtime). So records gather in a buffer that
// is written out when it holds logBufferSize bytes, every flush interval
// (-log-flush-interval, default defaultLogFlush), at once after a record
// at warn level or above (and everything before it, in order), and when
// the gateway exits. The price: if the process dies without unwinding
// (SIGKILL, a crash outside a handler), up to one interval of info lines
// is lost. Envoy and nginx make the same trade for access logs.
const (
	logBufferSize   = 64 << 10
	defaultLogFlush = 200 * time.Millisecond
)

// logWriter is an io.Writer that gathers what is written and passes it on
// to w in batches (see above). Records are written whole: a record that
// would overflow the buffer flushes it first. It is safe for concurrent
// use. An error from w is returned by the Write or Flush that met it.
type logWriter struct {
	mu       sync.Mutex // guards the fields below and serializes writes to w
	w        io.Writer
	buf      []byte
	buffered bool // false: every Write goes straight to w
}

func newLogWriter(w io.Writer, buffered bool) *logWriter {
	return &logWriter{w: w, buffered: buffered}
}

func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.buffered {
		return l.w.Write(p)
	}
	if len(l.buf)+len(p) > logBufferSize {
		if err := l.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) >= logBufferSize {
		return l.w.Write(p)
	}
	if l.buf == nil {
		l.buf = make([]byte, 0, logBufferSize)
	}
	l.buf = append(l.buf, p...)
	return len(p), nil
}

// Flush writes out what is buffered.
func (l *logWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flushLocked()
}

func (l *logWriter) flushLocked() error {
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.w.Write(l.buf)
	l.buf = l.buf[:0]
	return err
}

// run flushes at every tick until ctx ends, then flushes and turns
// buffering off: whatever is written later (a go-redis complaint after the
// gateway stopped) goes straight to w.
func (l *logWriter) run(ctx context.Context, tick <-chan time.Time) {
	for {
		select {
		case <-tick:
			_ = l.Flush()
		case <-ctx.Done():
			l.mu.Lock()
			_ = l.flushLocked()
			l.buffered = false
			l.mu.Unlock()
			return
		}
	}
}

// startLogWriter returns the writer the gateway's log and messages go
// through, flushing every interval (0: no buffering), and the function
// that stops the flushing and writes out the rest; it must be called
// before the gateway exits.
func startLogWriter(w io.Writer, interval time.Duration) (*logWriter, func()) {
	if interval <= 0 {
		return newLogWriter(w, false), func() {}
	}
	l := newLogWriter(w, true)
	ctx, cancel := context.WithCancel(context.Background())
	t := time.NewTicker(interval)
	var wg sync.WaitGroup
	wg.Go(func() { l.run(ctx, t.C) })
	return l, func() {
		cancel()
		wg.Wait()
		t.Stop()
	}
}

// flushingHandler writes a record at warn level or above out at once,
// with everything logged before it: warnings and errors are never held
// back, and never lost in a crash that follows them.
type flushingHandler struct {
	slog.Handler
	w *logWriter
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.w}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.w}
}
