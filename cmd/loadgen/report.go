package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// result summarizes one scenario's measured window. Latencies are of the
// successful requests, in milliseconds, from the scheduled send time.
type result struct {
	Scenario   string  `json:"scenario"`
	Sent       int     `json:"sent"` // ok + errors + aborted
	OK         int     `json:"ok"`
	Errors     int     `json:"errors"`
	Dropped    int     `json:"dropped"`           // not sent: the in-flight cap was reached
	Aborted    int     `json:"aborted,omitempty"` // in flight when the run was interrupted
	WindowSec  float64 `json:"window_s"`
	Throughput float64 `json:"ok_per_s"`
	P50        float64 `json:"p50_ms"`
	P95        float64 `json:"p95_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
	// CallsPerRequest is the mean upstream calls per successful request,
	// or nil when the gateway makes the upstream calls and the harness
	// cannot count them.
	CallsPerRequest *float64 `json:"upstream_calls_per_request"`
	// ErrorKinds counts the errors by kind, with the first of each.
	ErrorKinds map[string]*errorStat `json:"error_kinds,omitempty"`
	errorOrder []string              // keys of ErrorKinds, first seen first
}

// summarize turns what rec collected for sc over window into a result.
func summarize(sc *scenario, rec *recorder, window time.Duration) result {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	lat := slices.Clone(rec.latencies)
	slices.Sort(lat)
	r := result{
		Scenario:   sc.name,
		OK:         len(lat),
		Errors:     rec.errors,
		Dropped:    rec.dropped,
		Aborted:    rec.aborted,
		WindowSec:  window.Seconds(),
		P50:        ms(percentile(lat, 50)),
		P95:        ms(percentile(lat, 95)),
		P99:        ms(percentile(lat, 99)),
		Max:        ms(percentile(lat, 100)),
		errorOrder: slices.Clone(rec.order),
	}
	r.Sent = r.OK + r.Errors + r.Aborted
	if window > 0 {
		r.Throughput = float64(r.OK) / window.Seconds()
	}
	if sc.naive && r.OK > 0 {
		mean := float64(rec.calls) / float64(r.OK)
		r.CallsPerRequest = &mean
	}
	if len(rec.kinds) > 0 {
		r.ErrorKinds = make(map[string]*errorStat, len(rec.kinds))
		for k, st := range rec.kinds {
			r.ErrorKinds[k] = &errorStat{Count: st.Count, First: st.First}
		}
	}
	return r
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest sample with at least p% of the samples
// at or below it. It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// ms converts d to fractional milliseconds.
func ms(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// errorRate returns the fraction of sent requests that errored.
func (r result) errorRate() float64 {
	if r.Sent == 0 {
		return 0
	}
	return float64(r.Errors) / float64(r.Sent)
}

// formatTable formats results as an aligned text table, numbers right-aligned.
func formatTable(results []result) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	width := len("scenario")
	for _, r := range results {
		width = max(width, len(r.Scenario))
	}
	// AlignRight right-aligns every cell; padding the names to one width
	// left-aligns the first column.
	fmt.Fprintf(tw, "%-*s\tsent\tok\terrors\tdropped\tok/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\tcalls/req\t\n", width, "scenario")
	for _, r := range results {
		calls := "-"
		if r.CallsPerRequest != nil {
			calls = fmt.Sprintf("%.2f", *r.CallsPerRequest)
		}
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n",
			width, r.Scenario, r.Sent, r.OK, r.Errors, r.Dropped, r.Throughput, r.P50, r.P95, r.P99, r.Max, calls)
	}
	_ = tw.Flush() // writes to a strings.Builder cannot fail
	return b.String()
}

// writeErrors writes, for each result, the count and first error of each
// error kind, and a note on aborted requests.
func writeErrors(w io.Writer, results []result) {
	for _, r := range results {
		for _, k := range r.errorOrder {
			st := r.ErrorKinds[k]
			fmt.Fprintf(w, "loadgen: %s: %d × %s, first: %s\n", r.Scenario, st.Count, k, st.First)
		}
		if r.Aborted > 0 {
			fmt.Fprintf(w, "loadgen: %s: %d requests in flight when interrupted are not counted as errors\n", r.Scenario, r.Aborted)
		}
	}
}

// writeJSON writes one JSON object per result, one per line.
func writeJSON(w io.Writer, results []result) error {
	enc := json.NewEncoder(w)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}
