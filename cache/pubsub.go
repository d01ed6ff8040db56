package cache

import (
	"encoding/json"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// Backoff of the subscriber's reconnections while Redis is down: none for
// the first, then doubling from resubscribeBackoff up to maxResubscribeBackoff.
const (
	resubscribeBackoff    = 50 * time.Millisecond
	maxResubscribeBackoff = 2 * time.Second
)

// message is an invalidation as published on the channel: the new versions
// of namespaces and tags by name, and the keys to drop.
type message struct {
	Namespaces map[string]uint64 `json:"ns,omitempty"`
	Tags       map[string]uint64 `json:"tags,omitempty"`
	Keys       []string          `json:"keys,omitempty"`
}

// apply applies an invalidation to this replica's L1: versions move up
// (the entries depending on them become invalid at their next read) and the
// keys' entries are dropped at once.
func (c *Cache) apply(m message) {
	for name, v := range m.Namespaces {
		c.vers.raise(c.nsKey(name), v)
	}
	for name, v := range m.Tags {
		c.vers.raise(c.tagKey(name), v)
	}
	for _, k := range m.Keys {
		c.l1.Invalidate(k)
	}
	c.event(LayerL1, EventInvalidate)
}

// subscriber is the state of the subscriber goroutine.
type subscriber struct {
	c          *Cache
	ps         *redis.PubSub
	subscribed bool // a subscription was confirmed: the next one follows a lost connection
	lost       bool // the connection failed since the last confirmation; L1 was flushed
	pinged     bool // a PING waits for its PONG
	fails      int  // failures in a row
}

// subscribe is the subscriber goroutine, one per Cache, until Close: it
// applies every invalidation published on the channel. When its connection
// fails it flushes L1 (messages may have been missed), and again when it is
// subscribed once more, since fills made meanwhile may have missed some
// too; go-redis reconnects and resubscribes at the next Receive. A
// connection silent for pingEvery is pinged; one that does not answer
// either is replaced.
func (c *Cache) subscribe(ps *redis.PubSub) {
	defer c.wg.Done()
	s := &subscriber{c: c, ps: ps}
	defer func() { _ = s.ps.Close() }()
	for {
		msg, err := s.ps.ReceiveTimeout(c.ctx, c.pingEvery)
		if c.ctx.Err() != nil {
			return
		}
		switch {
		case err == nil:
			s.fails, s.pinged = 0, false
			s.handle(msg)
		case isTimeout(err) && !s.pinged:
			if err := s.ps.Ping(c.ctx); err != nil {
				s.failed(err)
			} else {
				s.pinged = true
			}
		case isTimeout(err):
			s.failed(errors.New("no answer to ping"))
			s.replace()
		default:
			s.failed(err)
		}
	}
}

// handle handles one thing received.
func (s *subscriber) handle(msg any) {
	c := s.c
	switch m := msg.(type) {
	case *redis.Subscription:
		if m.Kind != "subscribe" {
			return
		}
		c.subs.Add(1)
		if s.subscribed {
			c.flush("resubscribed after a lost connection")
		}
		c.readyOnce.Do(func() { close(c.ready) })
		s.subscribed, s.lost = true, false
	case *redis.Message:
		var im message
		if err := json.Unmarshal([]byte(m.Payload), &im); err != nil {
			c.log.Warn("cache: bad invalidation message ignored", "channel", m.Channel, "err", err)
			return
		}
		c.apply(im)
	}
}

// failed handles a lost connection: the first failure since the last
// subscription flushes L1; each one waits a growing backoff, except the
// first, before the next Receive reconnects.
func (s *subscriber) failed(err error) {
	c := s.c
	c.readyOnce.Do(func() { close(c.ready) })
	if !s.lost {
		s.lost = true
		c.log.Warn("cache: invalidation subscription lost; reconnecting", "channel", c.channel, "err", err)
		c.flush("subscription lost")
	}
	s.pinged = false
	s.fails++
	if s.fails == 1 {
		return
	}
	d := min(resubscribeBackoff<<min(s.fails-2, 10), maxResubscribeBackoff)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.ctx.Done():
	case <-t.C:
	}
}

// replace closes the subscription and opens a new one, unless the Cache is
// closing.
func (s *subscriber) replace() {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	_ = s.ps.Close()
	s.ps = c.rdb.Subscribe(c.ctx, c.channel)
	c.ps = s.ps
}

// isTimeout reports whether err is a read that timed out.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
