package routes

import (
	"strconv"
	"strings"
	"time"

	"github.com/braidgw/braid/aggregate"
)

// maxHeaderBytes bounds the value of each list header Braid writes
// (Braid-Degraded, Braid-Missing-Keys, Cache-Status, Server-Timing): what
// would not fit is cut at an item boundary and counted. Clients and proxies
// commonly refuse a response whose headers total 8-16 KB or more, and an
// upstream decides how many keys go missing. The other headers Braid
// writes (Content-Type, Content-Length, Retry-After, Allow) are short by
// construction.
const maxHeaderBytes = 4 << 10

// maxMissingListed is the most keys Braid-Missing-Keys lists per batch
// call, so that one call's long list leaves room for the others.
const maxMissingListed = 50

// headerList bounds a list header's value while it is written: the caller
// appends the items to a byte slice of its own (which may live on its
// stack), each after next, and when they do not all fit in limit bytes, end
// keeps the longest run of leading items that fits with a marker after it,
// the marker counting what the cut items stood for and taking the
// separator of the first item cut. Knowing up front what all the items
// stand for (total) is what lets it decide as the items are written,
// keeping none of them:
//
//	l := newHeaderList(maxHeaderBytes, len(calls), moreItems)
//	var b []byte
//	for _, c := range calls {
//		if l.full(b) {
//			break // nothing written from here on would be kept
//		}
//		b = append(l.next(b, ",", 1), c...)
//	}
//	v := string(l.end(b))
type headerList struct {
	limit  int
	total  int    // what all the items stand for
	more   marker // ends a cut list
	items  int    // items begun
	listed int    // what the items begun stand for

	// The last place where the list may be cut with its marker after it:
	// the length of the items before it (-1: there is none yet), the
	// separator and the count of the marker.
	cut      int
	cutSep   string
	cutCount int
}

func newHeaderList(limit, total int, more marker) headerList {
	return headerList{limit: limit, total: total, more: more, cut: -1}
}

// full reports whether b, the items written so far, is already over the
// limit: no item written from then on would be kept, and the caller may go
// straight to end.
func (l *headerList) full(b []byte) bool { return len(b) > l.limit }

// next begins an item that stands for n things: it writes sep in b
// (unless the item comes first) and returns b, for the caller to append
// the item's text to.
func (l *headerList) next(b []byte, sep string, n int) []byte {
	if l.items == 0 {
		sep = ""
	}
	if count := l.total - l.listed; len(b)+len(sep)+l.more.len(count) <= l.limit {
		l.cut, l.cutSep, l.cutCount = len(b), sep, count
	}
	l.items++
	l.listed += n
	return append(b, sep...)
}

// end returns the value from b, once every item is written or full(b):
// b when it fits, else b cut to the last place the marker fits after, and
// the marker; nothing when it fits nowhere.
func (l *headerList) end(b []byte) []byte {
	switch {
	case len(b) <= l.limit:
		return b
	case l.cut < 0:
		return b[:0]
	}
	return l.more.append(append(b[:l.cut], l.cutSep...), l.cutCount)
}

// marker ends a list cut short: pre, the count of the things cut, post.
type marker struct{ pre, post string }

var (
	// moreItems is the marker of Braid's own list headers: "...(12 more)".
	moreItems = marker{pre: "...(", post: " more)"}
	// moreTimed ends Server-Timing: `more;desc="3 more calls"`.
	moreTimed = marker{pre: `more;desc="`, post: ` more calls"`}
	// moreCached ends Cache-Status: `braid; detail="3 more calls"`.
	moreCached = marker{pre: `braid; detail="`, post: ` more calls"`}
)

func (m marker) append(b []byte, n int) []byte {
	return append(strconv.AppendInt(append(b, m.pre...), int64(n), 10), m.post...)
}

func (m marker) len(n int) int {
	var digits [20]byte
	return len(m.pre) + len(strconv.AppendInt(digits[:0], int64(n), 10)) + len(m.post)
}

// formatDegraded lists the degraded calls, bounded to maxHeaderBytes.
func formatDegraded(calls []string) string {
	var buf [256]byte
	b := buf[:0]
	l := newHeaderList(maxHeaderBytes, len(calls), moreItems)
	for _, c := range calls {
		if l.full(b) {
			break
		}
		b = append(l.next(b, ",", 1), c...)
	}
	return string(l.end(b))
}

// formatMissing renders missing keys per batch call, listing at most
// maxMissingListed keys each, escaped with appendHeaderSafe, the whole
// bounded to maxHeaderBytes: "products=17,23,...(4 more); sellers=4".
func formatMissing(missing []aggregate.Missing) string {
	total := 0
	for _, m := range missing {
		total += len(m.Keys)
	}
	var buf [512]byte
	b := buf[:0]
	l := newHeaderList(maxHeaderBytes, total, moreItems)
	for _, m := range missing {
		listed := m.Keys[:min(len(m.Keys), maxMissingListed)]
		for i, k := range listed {
			if l.full(b) {
				return string(l.end(b))
			}
			if i == 0 {
				b = append(append(l.next(b, "; ", 1), m.Call...), '=')
			} else {
				b = l.next(b, ",", 1)
			}
			b = appendHeaderSafe(b, k)
		}
		if rest := len(m.Keys) - len(listed); rest > 0 {
			if l.full(b) {
				break
			}
			b = moreItems.append(l.next(b, ",", rest), rest)
		}
	}
	return string(l.end(b))
}

// cacheStatus renders one RFC 9211 Cache-Status entry per cached call, the
// call named in key: a hit says which layer (detail=l1 or l2), a miss
// fwd=miss, an expired answer served fwd=stale; a batch call is a hit when
// every key was, else fwd=miss with the share of keys the cache answered.
// Bounded to maxHeaderBytes, the calls cut are counted in a last entry,
// `braid; detail="3 more calls"`.
func cacheStatus(entries []aggregate.CacheEntry) string {
	var buf [512]byte
	b := buf[:0]
	l := newHeaderList(maxHeaderBytes, len(entries), moreCached)
	for _, e := range entries {
		if l.full(b) {
			break
		}
		b = append(l.next(b, ", ", 1), "braid; "...)
		switch {
		case !e.Batch:
			b = append(b, e.Status.CacheStatus()...)
		case e.Stale:
			b = appendKeysCached(append(b, "fwd=stale"...), e)
		case e.Hits == e.Keys:
			b = appendKeysCached(append(b, "hit"...), e)
		default:
			b = appendKeysCached(append(b, "fwd=miss"...), e)
		}
		b = strconv.AppendQuote(append(b, "; key="...), e.Call)
	}
	return string(l.end(b))
}

// appendKeysCached appends a batch call's share of keys cached:
// `; detail="40 of 50 keys cached"`.
func appendKeysCached(b []byte, e aggregate.CacheEntry) []byte {
	b = strconv.AppendInt(append(b, `; detail="`...), int64(e.Hits), 10)
	b = strconv.AppendInt(append(b, " of "...), int64(e.Keys), 10)
	return append(b, ` keys cached"`...)
}

// serverTiming renders res's call timings as a Server-Timing header (see
// formatServerTiming), the gateway's share being the request's time so far
// (total) minus the calls' critical path.
func serverTiming(res *aggregate.Result, total time.Duration) string {
	return formatServerTiming(res.Timings(), max(total-res.CriticalPath(), 0))
}

// formatServerTiming renders each call's duration as a Server-Timing
// entry, a failed call's reason or a cached call's outcome in its desc, and
// a last entry for the gateway's own share. Bounded to maxHeaderBytes, the
// gateway entry always last, the calls cut are counted in an entry
// `more;desc="3 more calls"`. Durations are in milliseconds, to the tenth.
func formatServerTiming(timings []aggregate.CallTiming, gateway time.Duration) string {
	var gw [32]byte
	g := appendMillis(append(gw[:0], "gateway;dur="...), gateway)
	var buf [512]byte
	b := buf[:0]
	l := newHeaderList(maxHeaderBytes-len(", ")-len(g), len(timings), moreTimed)
	for _, t := range timings {
		if l.full(b) {
			break
		}
		b = append(l.next(b, ", ", 1), t.Call...)
		switch {
		case t.Failed:
			b = append(append(append(b, `;desc="degraded: `...), classify(t.Err).Code...), '"')
		case t.Cache != "":
			b = append(append(append(b, `;desc="cache `...), t.Cache...), '"')
		}
		b = appendMillis(append(b, ";dur="...), t.Duration)
	}
	if b = l.end(b); len(b) > 0 {
		b = append(b, ", "...)
	}
	return string(append(b, g...))
}

// appendMillis appends d in milliseconds to the tenth, as fmt's %.1f
// writes float64(d.Microseconds())/1000: rounded to the nearest tenth from
// the float's exact value, a tie to even ("0.1" for 50µs and for 150µs,
// "1.2" for 1250µs, "1000.0" for 999950µs).
func appendMillis(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, float64(d.Microseconds())/1000, 'f', 1, 64)
}

// appendHeaderSafe appends s, which an upstream sent (a batch key), escaped
// for a list header: bytes outside visible ASCII, the list separators
// ",;=", quotes, backslash and "%" become %XX, so that a key can neither
// break the list apart nor the header.
func appendHeaderSafe(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`,;="\%`, c) >= 0 {
			b = append(b, '%', hex[c>>4], hex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return b
}

// boundedValue joins an upstream's header values for copying to the
// response, cut at maxHeaderBytes (an upstream must not make the response
// unreadable): control bytes are dropped, and a cut value ends in "...".
func boundedValue(vs []string) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteString(", ")
		}
		for j := 0; j < len(v); j++ {
			if c := v[j]; c >= ' ' && c != 0x7f {
				b.WriteByte(c)
			}
		}
		if b.Len() > maxHeaderBytes {
			break
		}
	}
	if s := b.String(); len(s) > maxHeaderBytes {
		return s[:maxHeaderBytes-3] + "..."
	}
	return b.String()
}
