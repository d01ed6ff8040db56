package cache

import "fmt"

// Status is where a value Get or Lookup returned came from.
type Status int

// The statuses of a value.
const (
	Miss        Status = iota // fetched (or the fetch failed): nothing usable was cached
	HitL1                     // fresh, from this process
	HitL2                     // fresh, from Redis
	Stale                     // past its TTL, served by stale_while_revalidate or stale_if_error
	NegativeHit               // a remembered "not found": the error is returned again, no fetch
)

// String returns "miss", "hit_l1", "hit_l2", "stale" or "negative_hit".
func (s Status) String() string {
	switch s {
	case Miss:
		return "miss"
	case HitL1:
		return "hit_l1"
	case HitL2:
		return "hit_l2"
	case Stale:
		return "stale"
	case NegativeHit:
		return "negative_hit"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// CacheStatus returns the RFC 9211 Cache-Status parameters for one entry:
// "hit; detail=l1", "hit; detail=l2", "hit; detail=negative", "fwd=stale" or
// "fwd=miss". The caller adds the cache's name ("braid; hit; detail=l1").
func (s Status) CacheStatus() string {
	switch s {
	case HitL1:
		return "hit; detail=l1"
	case HitL2:
		return "hit; detail=l2"
	case NegativeHit:
		return "hit; detail=negative"
	case Stale:
		return "fwd=stale"
	}
	return "fwd=miss"
}
