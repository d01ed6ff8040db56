package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// writes records every Write it is given, as one syscall would be.
type writes struct {
	mu    sync.Mutex
	calls [][]byte
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, bytes.Clone(p))
	return len(p), nil
}

func (w *writes) n() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.calls)
}

func (w *writes) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(bytes.Join(w.calls, nil))
}

// TestLogWriterBatches: records gather until a flush, which writes them in
// one call, in order; a record that would overflow the buffer flushes it
// first, so no write exceeds the buffer or splits a record; a record as
// large as the buffer goes out on its own after what was buffered.
func TestLogWriterBatches(t *testing.T) {
	var w writes
	l := newLogWriter(&w, true)
	for i := range 10 {
		_, _ = l.Write([]byte("line " + strings.Repeat("x", i) + "\n"))
	}
	if w.n() != 0 {
		t.Fatalf("%d writes before a flush, want 0", w.n())
	}
	if err := l.Flush(); err != nil || w.n() != 1 {
		t.Fatalf("flush: %v, %d writes, want 1", err, w.n())
	}
	if !strings.HasPrefix(w.all(), "line \nline x\nline xx\n") || strings.Count(w.all(), "\n") != 10 {
		t.Errorf("flushed %q", w.all())
	}
	_ = l.Flush()
	if w.n() != 1 {
		t.Errorf("an empty flush wrote: %d writes", w.n())
	}

	w = writes{}
	l = newLogWriter(&w, true)
	rec := []byte(strings.Repeat("r", 999) + "\n") // 1000 bytes
	for range 200 {
		_, _ = l.Write(rec)
	}
	_ = l.Flush()
	total := 0
	for i, c := range w.calls {
		if len(c) > logBufferSize || len(c)%len(rec) != 0 {
			t.Errorf("write %d: %d bytes, want whole records within %d", i, len(c), logBufferSize)
		}
		total += len(c)
	}
	if total != 200*len(rec) || w.n() != 4 { // 65 records fit in 64 KiB: 65+65+65+5
		t.Errorf("%d bytes in %d writes, want %d in 4", total, w.n(), 200*len(rec))
	}

	w = writes{}
	l = newLogWriter(&w, true)
	_, _ = l.Write([]byte("small\n"))
	big := bytes.Repeat([]byte("b"), logBufferSize)
	if n, err := l.Write(big); n != len(big) || err != nil {
		t.Fatalf("big record: %d, %v", n, err)
	}
	if w.n() != 2 || string(w.calls[0]) != "small\n" || len(w.calls[1]) != len(big) {
		t.Errorf("big record: %d writes, want the buffer then the record", w.n())
	}
}

// TestLogWriterUnbuffered: without buffering every record is its own write.
func TestLogWriterUnbuffered(t *testing.T) {
	var w writes
	l, stop := startLogWriter(&w, 0)
	defer stop()
	for range 3 {
		_, _ = l.Write([]byte("x\n"))
	}
	if w.n() != 3 {
		t.Errorf("%d writes for 3 records, want 3", w.n())
	}
}

// TestWarnFlushes: a record at warn or above is written out at once, with
// the info records before it, in order; info records wait.
func TestWarnFlushes(t *testing.T) {
	var w writes
	l := newLogWriter(&w, true)
	log := slog.New(flushingHandler{slog.NewTextHandler(l, nil), l}).With("component", "test")
	log.Info("first")
	log.Info("second")
	if w.n() != 0 {
		t.Fatalf("info records written at once: %d writes", w.n())
	}
	log.Warn("third")
	if w.n() != 1 {
		t.Fatalf("%d writes after a warning, want 1", w.n())
	}
	got := w.all()
	if i, j, k := strings.Index(got, "msg=first"), strings.Index(got, "msg=second"), strings.Index(got, "msg=third"); i < 0 || j < i || k < j ||
		!strings.Contains(got, "component=test") {
		t.Errorf("written %q, want first, second, third in order", got)
	}
	log.WithGroup("g").Error("fourth", "k", 1)
	if w.n() != 2 || !strings.Contains(w.all(), "g.k=1") {
		t.Errorf("error record: %d writes, %q", w.n(), w.all())
	}
}

// TestLogWriterRun: every tick flushes; when the context ends the rest is
// written and later records go straight through.
func TestLogWriterRun(t *testing.T) {
	var w writes
	l := newLogWriter(&w, true)
	ctx, cancel := context.WithCancel(context.Background())
	tick := make(chan time.Time) // unbuffered: a send returns once run has taken it
	done := make(chan struct{})
	go func() { defer close(done); l.run(ctx, tick) }()
	_, _ = l.Write([]byte("a\n"))
	tick <- time.Time{}
	tick <- time.Time{} // run is back in its loop: the first tick's flush is done
	if w.n() != 1 || w.all() != "a\n" {
		t.Fatalf("after a tick: %d writes, %q", w.n(), w.all())
	}
	_, _ = l.Write([]byte("b\n"))
	cancel()
	<-done
	if w.n() != 2 || w.all() != "a\nb\n" {
		t.Fatalf("after the end: %d writes, %q", w.n(), w.all())
	}
	_, _ = l.Write([]byte("c\n"))
	if w.n() != 3 {
		t.Errorf("a record after the end waits: %d writes", w.n())
	}
}

// TestRunFlushesOnExit: what the gateway logs and says before it exits
// reaches stderr, in order, though the flush interval has not passed.
func TestRunFlushesOnExit(t *testing.T) {
	var out bytes.Buffer
	var errOut writes
	code := run([]string{"-config", "/nonexistent/gateway.yaml", "-log-flush-interval", "1h"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.all(), "gateway: ") || !strings.Contains(errOut.all(), "/nonexistent/gateway.yaml") {
		t.Errorf("exit %d, stderr %q", code, errOut.all())
	}
	for _, bad := range []string{"-1s", "often"} {
		var e bytes.Buffer
		if code := run([]string{"-log-flush-interval", bad}, &out, &e); code != 2 || !strings.Contains(e.String(), "-log-flush-interval") {
			t.Errorf("-log-flush-interval %s: exit %d, stderr %q", bad, code, e.String())
		}
	}
}

// TestTracingErrors: OpenTelemetry's errors reach the gateway's log at
// warn, in its format, marked as the tracing component.
func TestTracingErrors(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	tracingErrors(log).Handle(errors.New("tracing: exporting 512 spans: connection refused"))
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %q", err, buf.String())
	}
	if rec["level"] != "WARN" || rec["component"] != "tracing" || rec["err"] != "tracing: exporting 512 spans: connection refused" {
		t.Errorf("logged %v", rec)
	}
}
