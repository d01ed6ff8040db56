package observability

import (
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"sync"
	"time"
)

// The live window behind /stats: the last statsSlots seconds, each slot a
// log-scale latency histogram from statsMin upwards, statsGrowth apart.
const (
	statsSlots   = 60
	statsBuckets = 72
	statsMin     = 50 * time.Microsecond
	statsGrowth  = 1.25 // bucket i holds latencies below statsMin·statsGrowth^i
)

var statsLogGrowth = math.Log(statsGrowth)

// stats is every live series, by kind ("routes", "upstreams") and name.
type stats struct {
	now func() time.Time

	mu     sync.RWMutex // guards byKind
	byKind map[string]map[string]*series
}

func newStats(now func() time.Time) *stats {
	return &stats{now: now, byKind: map[string]map[string]*series{}}
}

// series returns the named series of a kind, creating it on first use.
func (s *stats) series(kind, name string) *series {
	s.mu.RLock()
	sr := s.byKind[kind][name]
	s.mu.RUnlock()
	if sr != nil {
		return sr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKind[kind] == nil {
		s.byKind[kind] = map[string]*series{}
	}
	if sr = s.byKind[kind][name]; sr == nil {
		sr = &series{now: s.now}
		s.byKind[kind][name] = sr
	}
	return sr
}

// slot is one second of a series.
type slot struct {
	second  int64 // unix second this slot holds; stale slots are skipped
	count   uint64
	errors  uint64
	buckets [statsBuckets]uint32
}

// series is one route's or upstream's last minute.
type series struct {
	now   func() time.Time
	mu    sync.Mutex // guards slots
	slots [statsSlots]slot
}

// add records one event that took d; failed counts it as an error.
func (s *series) add(d time.Duration, failed bool) {
	sec := s.now().Unix()
	b := bucketOf(d)
	s.mu.Lock()
	sl := &s.slots[sec%statsSlots]
	if sl.second != sec {
		*sl = slot{second: sec}
	}
	sl.count++
	if failed {
		sl.errors++
	}
	sl.buckets[b]++
	s.mu.Unlock()
}

func bucketOf(d time.Duration) int {
	if d < statsMin {
		return 0
	}
	i := int(math.Log(float64(d)/float64(statsMin))/statsLogGrowth) + 1
	return min(i, statsBuckets-1)
}

// upperBound is the largest latency bucket i holds.
func upperBound(i int) time.Duration {
	return time.Duration(float64(statsMin) * math.Pow(statsGrowth, float64(i)))
}

// Summary is one series over the window, as /stats shows it.
type Summary struct {
	Requests  uint64  `json:"requests"`
	RatePerS  float64 `json:"rate_per_second"`
	ErrorRate float64 `json:"error_rate"`
	P50ms     float64 `json:"p50_ms"`
	P95ms     float64 `json:"p95_ms"`
	P99ms     float64 `json:"p99_ms"`
}

// summary merges the slots of the last minute. Percentiles are the upper
// bounds of their histogram buckets: within 25% above the true value.
func (s *series) summary() Summary {
	now := s.now().Unix()
	var merged slot
	s.mu.Lock()
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.second <= now-statsSlots || sl.second > now {
			continue
		}
		merged.count += sl.count
		merged.errors += sl.errors
		for b, n := range sl.buckets {
			merged.buckets[b] += n
		}
	}
	s.mu.Unlock()
	out := Summary{Requests: merged.count, RatePerS: float64(merged.count) / statsSlots}
	if merged.count == 0 {
		return out
	}
	out.ErrorRate = float64(merged.errors) / float64(merged.count)
	out.P50ms = quantile(&merged, 0.50)
	out.P95ms = quantile(&merged, 0.95)
	out.P99ms = quantile(&merged, 0.99)
	return out
}

func quantile(sl *slot, q float64) float64 {
	rank := uint64(math.Ceil(q * float64(sl.count)))
	var seen uint64
	for b, n := range sl.buckets {
		if seen += uint64(n); seen >= rank {
			return float64(upperBound(b).Microseconds()) / 1000
		}
	}
	return float64(upperBound(statsBuckets-1).Microseconds()) / 1000
}

// Stats is the /stats document.
type Stats struct {
	WindowSeconds int                `json:"window_seconds"`
	Routes        map[string]Summary `json:"routes"`
	Upstreams     map[string]Summary `json:"upstreams"`
}

// snapshot summarises every series.
func (s *stats) snapshot() Stats {
	out := Stats{WindowSeconds: statsSlots, Routes: map[string]Summary{}, Upstreams: map[string]Summary{}}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for kind, byName := range s.byKind {
		names := make([]string, 0, len(byName))
		for n := range byName {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			switch kind {
			case "routes":
				out.Routes[n] = byName[n].summary()
			case "upstreams":
				out.Upstreams[n] = byName[n].summary()
			}
		}
	}
	return out
}

// handler serves the snapshot as JSON.
func (s *stats) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.snapshot())
	})
}
