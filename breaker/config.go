package breaker

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Defaults applied by WithDefaults to the zero fields of a Config.
const (
	defaultWindow              = 10 * time.Second
	defaultMinCalls            = 10
	defaultFailureRate         = 0.5
	defaultSlowCallDuration    = time.Second
	defaultSlowCallRate        = 0.8
	defaultConsecutiveFailures = 5
	defaultOpenDuration        = 5 * time.Second
	defaultMaxOpenDuration     = 20 * time.Second
	defaultHalfOpenProbes      = 3
)

// numBuckets is the number of buckets the sliding window is kept as.
const numBuckets = 10

// minWindow is the shortest Window Validate accepts: ten 1ms buckets.
const minWindow = numBuckets * time.Millisecond

// Config configures one upstream's Breaker. Zero values mean "use the
// default"; negative values are rejected by Validate.
type Config struct {
	// Window is the length of the sliding window over which the failure and
	// slow-call rates are judged. It is kept as 10 buckets of Window/10, so
	// calls leave it one bucket at a time. Default 10s; at least 10ms.
	Window time.Duration `yaml:"window"`

	// MinCalls is the number of calls the window must hold before its rates
	// are judged, so that 1 failure out of 1 call does not trip. Default 10.
	MinCalls int `yaml:"min_calls"`

	// FailureRate, in (0, 1], trips the breaker when failures/calls in the
	// window reaches it. Default 0.5.
	FailureRate float64 `yaml:"failure_rate"`

	// SlowCallDuration is how long a call must take to count as slow,
	// whatever its outcome. Default 1s.
	SlowCallDuration time.Duration `yaml:"slow_call_duration"`

	// SlowCallRate, in (0, 1], trips the breaker when slow/calls in the
	// window reaches it. Default 0.8.
	SlowCallRate float64 `yaml:"slow_call_rate"`

	// ConsecutiveFailures trips the breaker after this many failures in a
	// row, however few calls the window holds. Default 5.
	ConsecutiveFailures int `yaml:"consecutive_failures"`

	// OpenDuration is how long the breaker stays open after its first trip;
	// it doubles on each trip that follows without the breaker closing in
	// between (a failed probe), up to MaxOpenDuration. Each period is then
	// shortened by a random 0-20% of jitter. Default 5s, or
	// MaxOpenDuration if that is set and shorter.
	OpenDuration time.Duration `yaml:"open_duration"`

	// MaxOpenDuration caps the growing open period. Default 20s, or
	// OpenDuration if that is set and longer.
	MaxOpenDuration time.Duration `yaml:"max_open_duration"`

	// HalfOpenProbes is the number of calls admitted while half-open; that
	// many successes close the breaker, and one failed or slow probe opens
	// it again. A probe recorded as Ignored frees its permit. Default 3.
	HalfOpenProbes int `yaml:"half_open_probes"`
}

// Validate reports every problem with c, each naming its YAML field, joined
// with errors.Join in the order of the fields. It returns nil when c is
// usable.
func (c Config) Validate() error {
	return errors.Join(
		validateWindow(c.Window),
		nonNegative("min_calls", c.MinCalls),
		validateRate("failure_rate", c.FailureRate),
		nonNegative("slow_call_duration", c.SlowCallDuration),
		validateRate("slow_call_rate", c.SlowCallRate),
		nonNegative("consecutive_failures", c.ConsecutiveFailures),
		nonNegative("open_duration", c.OpenDuration),
		validateMaxOpenDuration(c.MaxOpenDuration, c.OpenDuration),
		nonNegative("half_open_probes", c.HalfOpenProbes),
	)
}

// nonNegative checks a count or duration that 0 defaults.
func nonNegative[T int | time.Duration](field string, v T) error {
	if v < 0 {
		return fmt.Errorf("%s: must not be negative, got %v", field, v)
	}
	return nil
}

// validateRate checks a rate in (0, 1] that 0 defaults.
func validateRate(field string, v float64) error {
	if math.IsNaN(v) || v < 0 || v > 1 {
		return fmt.Errorf("%s: must be between 0 and 1, got %g", field, v)
	}
	return nil
}

// validateWindow checks the window field: 0 or at least one 1ms bucket each.
func validateWindow(w time.Duration) error {
	if w > 0 && w < minWindow {
		return fmt.Errorf("window: must be at least %s (%d buckets of 1ms), got %s", minWindow, numBuckets, w)
	}
	return nonNegative("window", w)
}

// validateMaxOpenDuration checks the max_open_duration field against
// open_duration when both are set.
func validateMaxOpenDuration(maxOpen, open time.Duration) error {
	if open > 0 && maxOpen > 0 && maxOpen < open {
		return fmt.Errorf("max_open_duration: must not be shorter than open_duration (%s), got %s", open, maxOpen)
	}
	return nonNegative("max_open_duration", maxOpen)
}

// WithDefaults returns c with every zero field set to its default. It does
// not validate c; New does both.
func (c Config) WithDefaults() Config {
	if c.Window == 0 {
		c.Window = defaultWindow
	}
	if c.MinCalls == 0 {
		c.MinCalls = defaultMinCalls
	}
	if c.FailureRate == 0 {
		c.FailureRate = defaultFailureRate
	}
	if c.SlowCallDuration == 0 {
		c.SlowCallDuration = defaultSlowCallDuration
	}
	if c.SlowCallRate == 0 {
		c.SlowCallRate = defaultSlowCallRate
	}
	if c.ConsecutiveFailures == 0 {
		c.ConsecutiveFailures = defaultConsecutiveFailures
	}
	if c.OpenDuration == 0 {
		c.OpenDuration = defaultOpenDuration
		if c.MaxOpenDuration > 0 {
			c.OpenDuration = min(c.OpenDuration, c.MaxOpenDuration)
		}
	}
	if c.MaxOpenDuration == 0 {
		c.MaxOpenDuration = max(defaultMaxOpenDuration, c.OpenDuration)
	}
	if c.HalfOpenProbes == 0 {
		c.HalfOpenProbes = defaultHalfOpenProbes
	}
	return c
}
