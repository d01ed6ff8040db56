package routes

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/braidgw/braid/aggregate"
	"github.com/braidgw/braid/breaker"
	"github.com/braidgw/braid/cache"
	"github.com/braidgw/braid/upstream"
)

// The list headers as they were built before they were written into one
// byte slice (commit 1b90a97): each item a string kept in a list, joined
// and cut at the end, numbers and quotes formatted with fmt. They are the
// reference the current ones must match byte for byte.

type refList struct{ items []refItem }

type refItem struct {
	sep, text string
	n         int
}

func (l *refList) add(sep, text string) { l.addN(sep, text, 1) }

func (l *refList) addN(sep, text string, n int) {
	l.items = append(l.items, refItem{sep: sep, text: text, n: n})
}

func (l *refList) value(max int, more func(n int) string) string {
	size, total := 0, 0
	for i, it := range l.items {
		if i > 0 {
			size += len(it.sep)
		}
		size += len(it.text)
		total += it.n
	}
	var b strings.Builder
	if size <= max {
		b.Grow(size)
		l.write(&b, len(l.items))
		return b.String()
	}
	keep, kept, used, listed := 0, "", 0, 0
	for k := 0; k <= len(l.items); k++ {
		if k > 0 {
			it := l.items[k-1]
			if k > 1 {
				used += len(it.sep)
			}
			used += len(it.text)
			listed += it.n
		}
		if used > max {
			break
		}
		marker := more(total - listed)
		if k > 0 {
			marker = l.items[k].sep + marker // k < len(items): all of them do not fit
		}
		if used+len(marker) <= max {
			keep, kept = k, marker
		}
	}
	l.write(&b, keep)
	b.WriteString(kept)
	return b.String()
}

func (l *refList) write(b *strings.Builder, n int) {
	for i, it := range l.items[:n] {
		if i > 0 {
			b.WriteString(it.sep)
		}
		b.WriteString(it.text)
	}
}

func moreItemsReference(n int) string { return fmt.Sprintf("...(%d more)", n) }

func headerSafeReference(s string) string {
	const hex = "0123456789ABCDEF"
	unsafe := func(c byte) bool { return c <= ' ' || c >= 0x7f || strings.IndexByte(`,;="\%`, c) >= 0 }
	n := 0
	for i := 0; i < len(s); i++ {
		if unsafe(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		if c := s[i]; unsafe(c) {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func formatDegradedReference(calls []string) string {
	var l refList
	for _, c := range calls {
		l.add(",", c)
	}
	return l.value(maxHeaderBytes, moreItemsReference)
}

func formatMissingReference(missing []aggregate.Missing) string {
	var l refList
	for _, m := range missing {
		listed := m.Keys[:min(len(m.Keys), maxMissingListed)]
		for i, k := range listed {
			if i == 0 {
				l.add("; ", m.Call+"="+headerSafeReference(k))
			} else {
				l.add(",", headerSafeReference(k))
			}
		}
		if rest := len(m.Keys) - len(listed); rest > 0 {
			l.addN(",", moreItemsReference(rest), rest)
		}
	}
	return l.value(maxHeaderBytes, moreItemsReference)
}

func cacheStatusReference(entries []aggregate.CacheEntry) string {
	var l refList
	var b strings.Builder
	for _, e := range entries {
		b.Reset()
		b.WriteString("braid; ")
		switch {
		case !e.Batch:
			b.WriteString(e.Status.CacheStatus())
		case e.Stale:
			fmt.Fprintf(&b, `fwd=stale; detail="%d of %d keys cached"`, e.Hits, e.Keys)
		case e.Hits == e.Keys:
			fmt.Fprintf(&b, `hit; detail="%d of %d keys cached"`, e.Hits, e.Keys)
		default:
			fmt.Fprintf(&b, `fwd=miss; detail="%d of %d keys cached"`, e.Hits, e.Keys)
		}
		fmt.Fprintf(&b, "; key=%q", e.Call)
		l.add(", ", b.String())
	}
	return l.value(maxHeaderBytes, func(n int) string { return fmt.Sprintf(`braid; detail="%d more calls"`, n) })
}

// serverTimingReference is the old serverTiming(res, total) with what it
// read from res as arguments: res.Timings(), and max(total -
// res.CriticalPath(), 0) as gateway.
func serverTimingReference(timings []aggregate.CallTiming, gateway time.Duration) string {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var l refList
	var b strings.Builder
	for _, t := range timings {
		b.Reset()
		b.WriteString(t.Call)
		switch {
		case t.Failed:
			b.WriteString(`;desc="degraded: `)
			b.WriteString(classify(t.Err).Code)
			b.WriteString(`"`)
		case t.Cache != "":
			b.WriteString(`;desc="cache `)
			b.WriteString(t.Cache)
			b.WriteString(`"`)
		}
		fmt.Fprintf(&b, ";dur=%.1f", ms(t.Duration))
		l.add(", ", b.String())
	}
	gw := fmt.Sprintf("gateway;dur=%.1f", ms(gateway))
	calls := l.value(maxHeaderBytes-len(", ")-len(gw), func(n int) string { return fmt.Sprintf(`more;desc="%d more calls"`, n) })
	if calls == "" {
		return gw
	}
	return calls + ", " + gw
}

// callErrors are failures of the kinds classify tells apart.
var callErrors = []error{
	context.DeadlineExceeded,
	upstream.ErrUnavailable,
	&upstream.StatusError{Status: 500},
	&upstream.StatusError{Status: 404},
	&upstream.RejectedError{Err: breaker.ErrOpen},
	&aggregate.CallError{Call: "user", Upstream: "users", Err: upstream.ErrInvalidJSON},
	errors.New("connection refused"),
}

// gen makes random inputs for the list headers: names and keys of every
// length up to what makes a list overflow, with separators, quotes,
// control and non-ASCII bytes; durations from nothing to hours, near
// rounding ties, and negative.
type gen struct{ r *rand.Rand }

func (g gen) text(maxLen int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_.~ ,;=\"\\%\r\n\x00\x7fé"
	b := make([]byte, g.r.IntN(maxLen+1))
	for i := range b {
		b[i] = alphabet[g.r.IntN(len(alphabet))]
	}
	return string(b)
}

func (g gen) count() int {
	switch g.r.IntN(4) {
	case 0:
		return g.r.IntN(5)
	case 1:
		return g.r.IntN(40)
	default:
		return g.r.IntN(300)
	}
}

func (g gen) duration() time.Duration {
	switch g.r.IntN(6) {
	case 0:
		return time.Duration(g.r.IntN(1000)) // under a microsecond
	case 1:
		return time.Duration(g.r.IntN(20000)*50) * time.Microsecond // ties: x.x5 ms
	case 2:
		return -time.Duration(g.r.IntN(200)) * time.Microsecond
	case 3:
		return time.Duration(g.r.Int64N(int64(3 * time.Hour)))
	default:
		return time.Duration(g.r.Int64N(int64(2 * time.Second)))
	}
}

func (g gen) timings() []aggregate.CallTiming {
	ts := make([]aggregate.CallTiming, g.count())
	for i := range ts {
		ts[i] = aggregate.CallTiming{Call: g.text(g.r.IntN(80)), Duration: g.duration()}
		switch g.r.IntN(4) {
		case 0:
			ts[i].Failed, ts[i].Err = true, callErrors[g.r.IntN(len(callErrors))]
		case 1:
			ts[i].Cache = []string{"hit l1", "hit l2", "miss", "stale", "40/50 keys"}[g.r.IntN(5)]
		}
	}
	return ts
}

func (g gen) cacheEntries() []aggregate.CacheEntry {
	es := make([]aggregate.CacheEntry, g.count())
	for i := range es {
		keys := g.r.IntN(2000)
		es[i] = aggregate.CacheEntry{Call: g.text(g.r.IntN(60)), Status: cache.Status(g.r.IntN(6)), Batch: g.r.IntN(2) == 0,
			Keys: keys, Hits: []int{keys, g.r.IntN(keys + 1)}[g.r.IntN(2)], Stale: g.r.IntN(4) == 0}
	}
	return es
}

func (g gen) missing() []aggregate.Missing {
	ms := make([]aggregate.Missing, g.r.IntN(6))
	for i := range ms {
		ms[i].Call = g.text(20)
		ms[i].Keys = make([]string, g.count())
		for j := range ms[i].Keys {
			ms[i].Keys[j] = g.text(g.r.IntN(120))
		}
	}
	return ms
}

func (g gen) names() []string {
	ns := make([]string, g.count())
	for i := range ns {
		ns[i] = g.text(g.r.IntN(100))
	}
	return ns
}

// TestListHeadersMatchReference checks each list header differentially
// against its reference on random inputs, about half of them over
// maxHeaderBytes.
func TestListHeadersMatchReference(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(1, 2))}
	cut := 0
	for i := range 3000 {
		ts, gw := g.timings(), g.duration()
		if got, want := formatServerTiming(ts, gw), serverTimingReference(ts, gw); got != want {
			t.Fatalf("case %d: Server-Timing\n got %q\nwant %q", i, got, want)
		}
		es := g.cacheEntries()
		if got, want := cacheStatus(es), cacheStatusReference(es); got != want {
			t.Fatalf("case %d: Cache-Status\n got %q\nwant %q", i, got, want)
		}
		ms := g.missing()
		got, want := formatMissing(ms), formatMissingReference(ms)
		if got != want {
			t.Fatalf("case %d: %s\n got %q\nwant %q", i, MissingKeysHeader, got, want)
		}
		if strings.Contains(want, "more)") && len(want) > maxHeaderBytes-100 {
			cut++
		}
		ns := g.names()
		if got, want := formatDegraded(ns), formatDegradedReference(ns); got != want {
			t.Fatalf("case %d: %s\n got %q\nwant %q", i, DegradedHeader, got, want)
		}
	}
	if cut < 100 {
		t.Errorf("only %d of the cases were cut at maxHeaderBytes: the inputs do not reach the limit often enough", cut)
	}
}

// FuzzServerTiming checks formatServerTiming against its reference. names
// is split at "|" into the calls; each byte of flags makes its call fail
// (1), cached (2) or plain, and durs, as microseconds spread by each
// byte, gives the durations.
func FuzzServerTiming(f *testing.F) {
	f.Add("user|orders|notifications|recommendations", []byte{0, 0, 1, 2}, int64(1250), int64(50))
	f.Add("a", []byte{}, int64(0), int64(0))
	f.Add(strings.Repeat("long-call-name|", 200), []byte{1, 2, 0}, int64(999950), int64(-40))
	f.Add("", []byte{2}, int64(-1), int64(1<<40))
	f.Fuzz(func(t *testing.T, names string, flags []byte, us, gatewayUS int64) {
		var ts []aggregate.CallTiming
		for i, name := range strings.Split(names, "|") {
			d := time.Duration(us+int64(i)*37) * time.Microsecond
			if i < len(flags) {
				d += time.Duration(flags[i]) * time.Nanosecond * 999
			}
			ct := aggregate.CallTiming{Call: name, Duration: d}
			if i < len(flags) {
				switch flags[i] % 3 {
				case 1:
					ct.Failed, ct.Err = true, callErrors[int(flags[i])%len(callErrors)]
				case 2:
					ct.Cache = "hit l1"
				}
			}
			ts = append(ts, ct)
		}
		gw := time.Duration(gatewayUS) * time.Microsecond
		if got, want := formatServerTiming(ts, gw), serverTimingReference(ts, gw); got != want {
			t.Fatalf("\n got %q\nwant %q", got, want)
		}
	})
}

// BenchmarkListHeaders builds the dashboard's Server-Timing and
// Cache-Status (four calls, cached) with the current code and with the
// reference.
func BenchmarkListHeaders(b *testing.B) {
	timings := []aggregate.CallTiming{
		{Call: "user", Duration: 12345 * time.Microsecond, Cache: "hit l1"},
		{Call: "orders", Duration: 1250 * time.Microsecond, Cache: "hit l1"},
		{Call: "notifications", Duration: 50 * time.Microsecond, Cache: "miss"},
		{Call: "recommendations", Duration: 999950 * time.Microsecond, Cache: "hit l2"},
	}
	entries := []aggregate.CacheEntry{
		{Call: "user", Status: cache.HitL1}, {Call: "orders", Status: cache.HitL1},
		{Call: "notifications", Status: cache.Miss}, {Call: "recommendations", Status: cache.HitL2},
	}
	for _, bc := range []struct {
		name string
		f    func() string
	}{
		{"server-timing/current", func() string { return formatServerTiming(timings, 150*time.Microsecond) }},
		{"server-timing/reference", func() string { return serverTimingReference(timings, 150*time.Microsecond) }},
		{"cache-status/current", func() string { return cacheStatus(entries) }},
		{"cache-status/reference", func() string { return cacheStatusReference(entries) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = bc.f()
			}
		})
	}
}
