package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// row is one side at one concurrency, over all its rounds.
type row struct {
	Side        string
	Concurrency int
	Rounds      int
	Requests    int
	OK          int
	NonOK       int // non-200 answers and failed requests
	Statuses    map[int]int
	Errors      int
	FirstError  string
	OKPerSec    float64
	P50, P99    time.Duration
	GatewayCPU  float64 // µs of the side's CPU per request
	UpstreamCPU float64 // µs of the fake upstreams' CPU per request
	CallsPerReq float64 // upstream requests per request
}

// summarize folds rounds into one row per side and concurrency, in the
// order sides and concurrencies first appear. clkTck converts /proc
// ticks to seconds.
func summarize(rounds []round, clkTck int64) []row {
	type key struct {
		side string
		c    int
	}
	var order []key
	groups := map[key][]round{}
	for _, r := range rounds {
		k := key{r.side, r.concurrency}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].c < order[j].c })
	rows := make([]row, 0, len(order))
	usPerTick := 1e6 / float64(clkTck)
	for _, k := range order {
		w := row{Side: k.side, Concurrency: k.c, Statuses: map[int]int{}}
		var window time.Duration
		var lat []time.Duration
		var gw, up, calls int64
		for _, r := range groups[k] {
			w.Rounds++
			w.Requests += r.requests
			w.OK += r.ok
			w.Errors += r.errors
			for s, n := range r.statuses {
				w.Statuses[s] += n
				w.NonOK += n
			}
			if w.FirstError == "" {
				w.FirstError = r.firstError
			}
			window += r.window
			lat = append(lat, r.latencies...)
			gw, up, calls = gw+r.gwTicks, up+r.upTicks, calls+r.upCalls
		}
		w.NonOK += w.Errors
		slices.Sort(lat)
		w.P50, w.P99 = percentile(lat, 50), percentile(lat, 99)
		if window > 0 {
			w.OKPerSec = float64(w.OK) / window.Seconds()
		}
		if w.Requests > 0 {
			w.GatewayCPU = float64(gw) * usPerTick / float64(w.Requests)
			w.UpstreamCPU = float64(up) * usPerTick / float64(w.Requests)
			w.CallsPerReq = float64(calls) / float64(w.Requests)
		}
		rows = append(rows, w)
	}
	return rows
}

// percentile is the nearest-rank percentile p of sorted samples, 0 for
// none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.9999999)
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// writeTable prints rows as a Markdown table, each Braid row followed by
// its ratios to the baseline row of the same concurrency.
func writeTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| c | side | ok/s | p50 ms | p99 ms | side CPU µs/req | upstreams CPU µs/req | upstream calls/req | non-200 |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|")
	base := map[int]row{}
	for _, r := range rows {
		if r.Side == baselineName {
			base[r.Concurrency] = r
		}
	}
	for _, r := range rows {
		fmt.Fprintf(w, "| %d | %s | %.0f | %.3f | %.3f | %.0f | %.0f | %.2f | %s |\n", r.Concurrency, r.Side, r.OKPerSec,
			ms(r.P50), ms(r.P99), r.GatewayCPU, r.UpstreamCPU, r.CallsPerReq, r.failures())
		b, ok := base[r.Concurrency]
		if r.Side == baselineName || !ok {
			continue
		}
		fmt.Fprintf(w, "| %d | %s / baseline | %s | %s | %s | %s | | | |\n", r.Concurrency, r.Side,
			ratio(r.OKPerSec, b.OKPerSec), ratio(ms(r.P50), ms(b.P50)), ratio(ms(r.P99), ms(b.P99)), ratio(r.GatewayCPU, b.GatewayCPU))
	}
}

// failures formats the non-200 answers and failed requests, "0" for none.
func (r row) failures() string {
	if r.NonOK == 0 {
		return "0"
	}
	var parts []string
	codes := make([]int, 0, len(r.Statuses))
	for c := range r.Statuses {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", r.Statuses[c], c))
	}
	if r.Errors > 0 {
		parts = append(parts, fmt.Sprintf("%d× no answer", r.Errors))
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ratio(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("**%.2f×**", a/b)
}
