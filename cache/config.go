package cache

import (
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults applied by New to the zero fields of a Config.
const (
	defaultTimeout        = 50 * time.Millisecond
	defaultPrefix         = "braid:"
	defaultMaxBytes       = 64 << 20
	defaultRefreshTimeout = 10 * time.Second
)

// Config is the gateway.yaml "cache:" section. Zero values mean "use the
// default"; negative values are rejected by Validate.
type Config struct {
	// Disabled turns caching off for the whole gateway: every call goes to
	// its upstream, whatever its cache section says, and the admin cache
	// API answers 404. The gateway then builds no Cache. Default false.
	Disabled bool `yaml:"disabled"`

	// Redis is the shared second tier. Without a URL the cache is L1 only.
	Redis RedisConfig `yaml:"redis"`

	// L1 is the in-process tier.
	L1 L1Config `yaml:"l1"`

	// RefreshTimeout bounds each background refresh (stale_while_revalidate),
	// and a coalesced fetch whose first caller had no deadline. Default 10s.
	RefreshTimeout time.Duration `yaml:"refresh_timeout"`
}

// RedisConfig configures L2.
type RedisConfig struct {
	// URL is redis://[user:password@]host:port/db, as redis.ParseURL reads
	// it (rediss:// for TLS). Default "": no L2, the cache is L1 only and
	// invalidations reach this replica only.
	URL string `yaml:"url"`

	// Timeout bounds each L2 operation (a read, a fill, a reconnecting
	// dial's wait); one that takes longer counts as a Redis failure and the
	// call goes on without L2. Default 50ms.
	Timeout time.Duration `yaml:"timeout"`

	// Prefix starts every Redis key the cache writes and names its pub/sub
	// channel (prefix + "invalidate"). Replicas sharing a prefix share
	// entries and invalidations. Default "braid:".
	Prefix string `yaml:"prefix"`
}

// L1Config configures the in-process tier.
type L1Config struct {
	// MaxBytes bounds the memory of L1 entries: keys, values and a fixed
	// overhead per entry. Default 64MiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
}

// Validate reports every problem with c, each naming its field from the
// file's root ("cache.redis.url: ..."), joined with errors.Join. It returns
// nil when c is usable.
func (c Config) Validate() error {
	var errs []error
	if c.Redis.URL != "" {
		if _, err := redis.ParseURL(c.Redis.URL); err != nil {
			errs = append(errs, fmt.Errorf("cache.redis.url: %w", err))
		}
	}
	if c.Redis.Timeout < 0 {
		errs = append(errs, fmt.Errorf("cache.redis.timeout: must not be negative, got %s", c.Redis.Timeout))
	}
	if c.L1.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("cache.l1.max_bytes: must not be negative, got %d", int64(c.L1.MaxBytes)))
	}
	if c.RefreshTimeout < 0 {
		errs = append(errs, fmt.Errorf("cache.refresh_timeout: must not be negative, got %s", c.RefreshTimeout))
	}
	return errors.Join(errs...)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Redis.Timeout == 0 {
		c.Redis.Timeout = defaultTimeout
	}
	if c.Redis.Prefix == "" {
		c.Redis.Prefix = defaultPrefix
	}
	if c.L1.MaxBytes == 0 {
		c.L1.MaxBytes = defaultMaxBytes
	}
	if c.RefreshTimeout == 0 {
		c.RefreshTimeout = defaultRefreshTimeout
	}
	return c
}

// Policy is one call's caching, from its config. The zero Policy caches
// nothing: Get then just fetches.
type Policy struct {
	// TTL is how long a fetched value is fresh, plus a random 0-10% so that
	// entries filled together do not all expire together. Required (> 0)
	// for caching.
	TTL time.Duration

	// StaleWhileRevalidate is how long after its TTL a value may still be
	// served while one background fetch per key refreshes it. 0: never.
	StaleWhileRevalidate time.Duration

	// StaleIfError is how long after its TTL a value may be served when the
	// fetch that should replace it fails. 0: never.
	StaleIfError time.Duration

	// NegativeTTL is how long a fetch error for which Options.Negative
	// reports true (a 404) is remembered and returned again without a
	// fetch. Negative entries live in L1 only. 0: never.
	NegativeTTL time.Duration
}

// Validate reports every problem with p, each naming its field (ttl,
// stale_while_revalidate, stale_if_error, negative_ttl), or nil. The
// caller prefixes them with the call's path.
func (p Policy) Validate() []error {
	var errs []error
	if p.TTL <= 0 {
		errs = append(errs, fmt.Errorf("ttl: must be positive, got %s", p.TTL))
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"stale_while_revalidate", p.StaleWhileRevalidate},
		{"stale_if_error", p.StaleIfError},
		{"negative_ttl", p.NegativeTTL},
	} {
		if f.d < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %s", f.name, f.d))
		}
	}
	return errs
}

// keep is how long after its TTL an entry stored under p is worth keeping:
// the longer of its two stale windows.
func (p Policy) keep() time.Duration {
	return max(p.StaleWhileRevalidate, p.StaleIfError, 0)
}

// L1MaxBytes is the most memory the L1 layer takes under c: l1.max_bytes,
// or its default when unset.
func (c Config) L1MaxBytes() int64 { return int64(c.withDefaults().L1.MaxBytes) }
