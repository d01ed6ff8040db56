package routes

import (
	"fmt"
	"strings"
)

// maxHeaderBytes bounds the value of each list header Braid writes
// (Braid-Degraded, Braid-Missing-Keys, Cache-Status, Server-Timing): what
// would not fit is cut at an item boundary and counted. Clients and proxies
// commonly refuse a response whose headers total 8-16 KB or more, and an
// upstream decides how many keys go missing. The other headers Braid
// writes (Content-Type, Content-Length, Retry-After, Allow) are short by
// construction.
const maxHeaderBytes = 4 << 10

// headerList builds one header value from a list of items.
type headerList struct {
	items []headerItem
}

type headerItem struct {
	sep  string // written before the item, unless it comes first
	text string
	n    int // how many things the item stands for, in the count of those cut
}

// add appends an item standing for one thing.
func (l *headerList) add(sep, text string) { l.addN(sep, text, 1) }

// addN appends an item standing for n things (a "...(n more)" already
// counted, say).
func (l *headerList) addN(sep, text string, n int) {
	l.items = append(l.items, headerItem{sep: sep, text: text, n: n})
}

// value joins the items into at most max bytes. When they do not all fit,
// the longest run of leading items that fits with the marker more(n) after
// it is kept, n counting what the cut items stood for; the marker takes the
// separator of the first item cut.
func (l *headerList) value(max int, more func(n int) string) string {
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

func (l *headerList) write(b *strings.Builder, n int) {
	for i, it := range l.items[:n] {
		if i > 0 {
			b.WriteString(it.sep)
		}
		b.WriteString(it.text)
	}
}

// moreItems is the marker of Braid's own list headers: "...(12 more)".
func moreItems(n int) string { return fmt.Sprintf("...(%d more)", n) }

// headerSafe escapes what an upstream sent (a batch key) for a list
// header: bytes outside visible ASCII, the list separators ",;=", quotes,
// backslash and "%" become %XX, so that a key can neither break the list
// apart nor the header.
func headerSafe(s string) string {
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
