package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// memoryHeadroom is what the automatic memory limit allows beyond the
// response budget and the L1 cache: the runtime, connection buffers,
// request state and the garbage of a collection cycle. 64 MiB: with
// 64 × 7 MB bodies against the default 256 MiB budget, peak RSS was
// 333 MiB (BENCHMARKS.md); 128 MiB let it reach 397.
const memoryHeadroom = 64 << 20

// memoryLimit decides the Go runtime's soft memory limit for
// server.memory_limit (see serverConfig.MemoryLimit): the limit in bytes
// and why, or 0 to leave the runtime alone. budget is the upstream
// response budget in force (0 when off) and l1 the L1 cache's bound (0
// when the cache is off).
func memoryLimit(setting, budget, l1 int64, lookup func(string) (string, bool)) (int64, string) {
	switch {
	case setting > 0:
		return setting, "server.memory_limit"
	case setting < 0:
		return 0, "server.memory_limit: -1"
	}
	if v, ok := lookup("GOMEMLIMIT"); ok && v != "" {
		return 0, "GOMEMLIMIT=" + v
	}
	if budget <= 0 {
		return 0, "no response budget to derive it from"
	}
	return budget + l1 + memoryHeadroom, fmt.Sprintf("automatic: response budget %d + L1 cache %d + head room %d", budget, l1, int64(memoryHeadroom))
}

// applyMemoryLimit sets the runtime's soft memory limit as memoryLimit
// decides and returns the limit now in force, the reason, and a function
// that puts back the limit that was in force before.
func applyMemoryLimit(g *gateway, lookup func(string) (string, bool)) (int64, string, func()) {
	var l1 int64
	if g.cache != nil {
		l1 = g.cfg.Cache.L1MaxBytes()
	}
	limit, why := memoryLimit(int64(g.cfg.Server.MemoryLimit), g.upstreams.Memory().Budget, l1, lookup)
	prev := debug.SetMemoryLimit(-1) // -1 reads it
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	return debug.SetMemoryLimit(-1), why, func() { debug.SetMemoryLimit(prev) }
}

// autoGCPercent is server.gc_percent's automatic value under a memory
// limit. Serving dashboards at 2 000/s, Go's default 100 collected 4-5
// times a second (live heap 7-10 MB), at 70-130 ms of CPU per second:
// about a tenth of the gateway's; 400 collected under once a second, at
// 16-26 ms (BENCHMARKS.md). The price is heap at rest: up to five times
// the live heap, within the memory limit.
const autoGCPercent = 400

// gcPercent decides the Go runtime's GC percent for server.gc_percent:
// the percent and why, or 0 to leave the runtime alone. limit is the
// memory limit in force (math.MaxInt64 when there is none).
func gcPercent(setting int, limit int64, lookup func(string) (string, bool)) (int, string) {
	switch {
	case setting > 0:
		return setting, "server.gc_percent"
	case setting < 0:
		return 0, "server.gc_percent: -1"
	}
	if v, ok := lookup("GOGC"); ok && v != "" {
		return 0, "GOGC=" + v
	}
	if limit <= 0 || limit == math.MaxInt64 {
		return 0, "no memory limit to bound the heap"
	}
	return autoGCPercent, fmt.Sprintf("automatic: %d under the memory limit", autoGCPercent)
}

// applyGCPercent sets the runtime's GC percent as gcPercent decides and
// returns the percent now in force (-1: collection off), the reason, and a
// function that puts back the setting that was in force before.
func applyGCPercent(g *gateway, limit int64, lookup func(string) (string, bool)) (int, string, func()) {
	pct, why := gcPercent(g.cfg.Server.GCPercent, limit, lookup)
	if pct > 0 {
		prev := debug.SetGCPercent(pct)
		return pct, why, func() { debug.SetGCPercent(prev) }
	}
	cur := debug.SetGCPercent(100) // the runtime has no read: set and put back
	debug.SetGCPercent(cur)
	return cur, why, func() {}
}

// Returning memory after a burst. The Go runtime gives freed heap back to
// the OS slowly (minutes after a burst of large bodies, RSS was still
// hundreds of MiB above the baseline), and an orchestrator sees RSS. So
// every trimEvery the gateway looks at the heap memory it could give back
// (reclaimable); when that is more than trimFree and little of the
// response budget is in use (the burst is over), it returns it at once
// with debug.FreeOSMemory (a full collection: cheap when the heap is small,
// and done at most once per trimEvery).
const (
	trimEvery = 10 * time.Second
	trimFree  = 64 << 20
)

// reclaimable reads the heap bytes a collection and a scavenge would give
// back to the OS: free spans not yet returned, plus objects allocated
// beyond what the last collection found live (garbage not yet collected:
// after a burst under the memory limit, no allocation triggers the next
// collection, so the garbage would stay).
func reclaimable() uint64 {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	metrics.Read(s)
	for _, v := range s {
		if v.Value.Kind() != metrics.KindUint64 {
			return 0
		}
	}
	free, objects, live := s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()
	if objects > live {
		free += objects - live
	}
	return free
}

// trimMemory runs until ctx ends, returning free heap to the OS after a
// burst as described above. inUse reports the response budget in use and
// its size (both 0 when the budget is off: then only free memory counts).
func trimMemory(ctx context.Context, every time.Duration, free func() uint64, inUse func() (used, budget int64), trim func(), log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		used, budget := inUse()
		if f := free(); f > trimFree && used*8 <= budget {
			trim()
			log.Debug("returned free heap memory to the OS", "bytes", f)
		}
	}
}
