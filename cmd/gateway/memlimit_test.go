package main

import (
	"context"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestMemoryLimit: server.memory_limit sets the Go runtime's soft memory
// limit; 0 derives it from the response budget and the L1 cache bound
// unless $GOMEMLIMIT is set; -1 leaves the runtime alone; anything else
// negative is refused naming the field. The limit in force before is put
// back by the returned function.
func TestMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name   string
		config string
		env    map[string]string
		want   int64 // 0: the runtime's limit is left as it was
		why    string
		err    string
	}{
		{"automatic", "", nil, 256*mib + 64*mib + 64*mib, "automatic", ""},
		{"automatic without cache", "cache: {disabled: true}\n", nil, 256*mib + 64*mib, "automatic", ""},
		{"automatic with a small L1", "cache: {l1: {max_bytes: 32MiB}}\n", nil, 256*mib + 32*mib + 64*mib, "automatic", ""},
		{"automatic follows the budget", "server: {max_inflight_response_bytes: 64MiB}\n", nil, 64*mib + 64*mib + 64*mib, "automatic", ""},
		{"set", "server: {memory_limit: 1GiB}\n", nil, 1 << 30, "server.memory_limit", ""},
		{"set beats GOMEMLIMIT", "server: {memory_limit: 1GiB}\n", map[string]string{"GOMEMLIMIT": "2GiB"}, 1 << 30, "server.memory_limit", ""},
		{"GOMEMLIMIT rules the automatic value", "", map[string]string{"GOMEMLIMIT": "2GiB"}, 0, "GOMEMLIMIT=2GiB", ""},
		{"off", "server: {memory_limit: -1}\n", nil, 0, "-1", ""},
		{"no budget", "server: {max_inflight_response_bytes: -1}\n", nil, 0, "no response budget", ""},
		{"negative", "server: {memory_limit: -5}\n", nil, 0, "", "server.memory_limit: -5: write a size such as 512MiB"},
		{"not a size", "server: {memory_limit: huge}\n", nil, 0, "", "server.memory_limit: `huge` is not a byte size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := tt.env
			gw := buildFile(t, tt.config+validConfig, vars, tt.err)
			if gw == nil {
				return
			}
			before := debug.SetMemoryLimit(-1)
			got, why, restore := applyMemoryLimit(gw, env(vars))
			want := tt.want
			if want == 0 {
				want = before
			}
			if got != want || !strings.Contains(why, tt.why) {
				t.Errorf("limit = %d (%s), want %d (%s)", got, why, want, tt.why)
			}
			if now := debug.SetMemoryLimit(-1); now != want {
				t.Errorf("runtime limit = %d, want %d", now, want)
			}
			restore()
			if now := debug.SetMemoryLimit(-1); now != before {
				t.Errorf("after restore the runtime limit = %d, want %d", now, before)
			}
		})
	}
}

// TestGCPercent: server.gc_percent sets the Go runtime's GC percent; 0 is
// 400 under a memory limit unless $GOGC is set, and the runtime's own
// without a limit; -1 leaves the runtime alone; anything else negative is
// refused naming the field. The setting in force before is put back.
func TestGCPercent(t *testing.T) {
	const limit = 384 << 20
	tests := []struct {
		name   string
		config string
		env    map[string]string
		limit  int64
		want   int // 0: the runtime's setting is left as it was
		why    string
		err    string
	}{
		{"automatic under a limit", "", nil, limit, 400, "automatic", ""},
		{"automatic without a limit", "", nil, math.MaxInt64, 0, "no memory limit", ""},
		{"GOGC rules the automatic value", "", map[string]string{"GOGC": "150"}, limit, 0, "GOGC=150", ""},
		{"set", "server: {gc_percent: 200}\n", nil, limit, 200, "server.gc_percent", ""},
		{"set beats GOGC", "server: {gc_percent: 200}\n", map[string]string{"GOGC": "50"}, limit, 200, "server.gc_percent", ""},
		{"set without a limit", "server: {gc_percent: 300}\n", nil, math.MaxInt64, 300, "server.gc_percent", ""},
		{"off", "server: {gc_percent: -1}\n", nil, limit, 0, "-1", ""},
		{"negative", "server: {gc_percent: -5}\n", nil, limit, 0, "", "server.gc_percent: -5: write a percentage"},
		{"not a number", "server: {gc_percent: lots}\n", nil, limit, 0, "", "gc_percent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw := buildFile(t, tt.config+validConfig, tt.env, tt.err)
			if gw == nil {
				return
			}
			before := debug.SetGCPercent(100)
			debug.SetGCPercent(before)
			got, why, restore := applyGCPercent(gw, tt.limit, env(tt.env))
			want := tt.want
			if want == 0 {
				want = before
			}
			now := debug.SetGCPercent(want)
			restore()
			if got != want || now != want || !strings.Contains(why, tt.why) {
				t.Errorf("percent = %d (%s), runtime %d, want %d (%s)", got, why, now, want, tt.why)
			}
			if after := debug.SetGCPercent(before); after != before {
				t.Errorf("after restore the runtime's percent = %d, want %d", after, before)
			}
		})
	}
}

// TestTrimMemory: free heap is handed back to the OS after a burst (more
// than trimFree free, at most an eighth of the response budget in use),
// never while the budget is busy or when little is free, and the loop ends
// with its context.
func TestTrimMemory(t *testing.T) {
	tests := []struct {
		name      string
		free      uint64
		used, max int64
		trims     bool
	}{
		{"after a burst", 100 << 20, 0, 256 << 20, true},
		{"budget off", 100 << 20, 0, 0, true},
		{"budget busy", 100 << 20, 64 << 20, 256 << 20, false},
		{"little free", 1 << 20, 0, 256 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			checks := make(chan struct{})
			trims := 0
			done := make(chan struct{})
			go func() {
				defer close(done)
				trimMemory(ctx, time.Millisecond, func() uint64 { return tt.free },
					func() (int64, int64) {
						select {
						case checks <- struct{}{}:
						case <-ctx.Done():
						}
						return tt.used, tt.max
					},
					func() { trims++ }, slog.New(slog.DiscardHandler))
			}()
			for range 5 { // five checks; the trim of a check happens before the next
				<-checks
			}
			cancel()
			<-done
			// The fifth check's decision may or may not have run before
			// cancel; four full rounds have.
			if tt.trims && trims < 4 {
				t.Errorf("trimmed %d times in 5 checks, want at least 4", trims)
			}
			if !tt.trims && trims != 0 {
				t.Errorf("trimmed %d times, want none", trims)
			}
		})
	}
}
