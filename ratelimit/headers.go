package ratelimit

import (
	"net/http"
	"strconv"
	"time"
)

// Decision is the answer of Limiter.Allow for one request.
type Decision struct {
	// Allowed reports whether the request may go on. A denied request has
	// consumed nothing.
	Allowed bool

	// Limit is the quota of the policy: the Burst, the most requests a
	// client key can make at once.
	Limit int

	// Remaining is the number of further requests the key could make now,
	// this one included if it was allowed: 0 when denied.
	Remaining int

	// RetryAfter is, when denied, how long until the next request would be
	// allowed; 0 when allowed.
	RetryAfter time.Duration

	// Reset is how long until the key's quota is whole again (Remaining
	// back to Limit) if it makes no more requests.
	Reset time.Duration

	// Window is the time the policy gives Limit requests in: how long a
	// used-up quota takes to come back whole, Burst × Period / Rate.
	Window time.Duration

	// Policy is the name of the Limiter that decided, as given to New.
	Policy string
}

// The header fields Headers writes, in canonical form.
const (
	headerPolicy     = "Ratelimit-Policy"
	headerRateLimit  = "Ratelimit"
	headerRetryAfter = "Retry-After"
)

// Headers sets on h the RateLimit-Policy and RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers-11 (May 2026), and Retry-After when
// d denies, replacing any values they had:
//
//	RateLimit-Policy: "orders";q=50;w=1
//	RateLimit: "orders";r=0;t=1
//	Retry-After: 1
//
// q is Limit and w is Window in whole seconds, rounded up and at least 1.
// r is Remaining. t is, when allowed, Reset in whole seconds rounded up:
// spending r over t never overruns the quota. When denied t is RetryAfter's
// seconds, in which r=0 holds exactly, so that Retry-After does not point
// before the end of the effective window (section 6 of the draft).
// Retry-After is RetryAfter in whole seconds, rounded up and at least 1.
// The policy name is a structured-field String: '"' and '\' are escaped and
// bytes outside printable ASCII are written as '?'.
func (d Decision) Headers(h http.Header) {
	var buf [96]byte
	b := appendName(buf[:0], d.Policy)
	b = append(b, ";q="...)
	b = strconv.AppendInt(b, int64(max(d.Limit, 0)), 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, seconds(d.Window), 10)
	h[headerPolicy] = []string{string(b)}

	t := d.Reset
	if !d.Allowed {
		t = d.RetryAfter
	}
	b = appendName(buf[:0], d.Policy)
	b = append(b, ";r="...)
	b = strconv.AppendInt(b, int64(max(d.Remaining, 0)), 10)
	b = append(b, ";t="...)
	if d.Allowed {
		b = strconv.AppendInt(b, ceilSeconds(t), 10)
	} else {
		b = strconv.AppendInt(b, seconds(t), 10)
	}
	h[headerRateLimit] = []string{string(b)}

	if d.Allowed {
		delete(h, headerRetryAfter)
		return
	}
	h[headerRetryAfter] = []string{strconv.FormatInt(seconds(d.RetryAfter), 10)}
}

// appendName appends name as a structured-field String (RFC 9651 section
// 3.3.3).
func appendName(b []byte, name string) []byte {
	b = append(b, '"')
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c > 0x7e:
			b = append(b, '?')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// ceilSeconds returns d in whole seconds, rounded up; 0 for d <= 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// seconds returns d in whole seconds, rounded up and at least 1: the
// delay-seconds of a Retry-After or a window.
func seconds(d time.Duration) int64 {
	return max(ceilSeconds(d), 1)
}
