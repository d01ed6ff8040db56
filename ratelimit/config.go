package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// defaultPeriod is the Period of a Config that leaves it zero.
const defaultPeriod = time.Second

// minInterval is the shortest time between two requests a Config may ask
// for at its sustained rate: a million requests per second per key. Redis
// keeps time in microseconds.
const minInterval = time.Microsecond

// maxWindow bounds Burst times the interval between requests, so that the
// arithmetic on nanoseconds cannot overflow.
const maxWindow = time.Duration(math.MaxInt64 / 4)

// Config is one rate_limit block of gateway.yaml: a route's, or the global
// default. It allows Rate requests per Period per client key, in bursts of
// up to Burst. Zero values mean "use the default"; Rate has none.
type Config struct {
	// Rate is the number of requests a client key may make per Period, on
	// average. It may be fractional: 0.5 per 1s is one request every two
	// seconds. Required: > 0.
	Rate float64 `yaml:"rate"`

	// Period is the time Rate is counted over. Default 1s.
	Period time.Duration `yaml:"period"`

	// Burst is the number of requests a client key that has been idle may
	// make at once, and so the most it can have in hand. Default
	// ceil(Rate): a full Period's worth.
	Burst int `yaml:"burst"`
}

// Validate reports every problem with c, each naming its YAML field
// ("rate_limit.rate: must be > 0, got 0"), joined with errors.Join. It
// returns nil when c is usable. A route that refers to c prefixes the
// errors with its own path.
func (c Config) Validate() error {
	var errs []error
	if !(c.Rate > 0) || math.IsInf(c.Rate, 1) { // also rejects NaN
		errs = append(errs, fmt.Errorf("rate_limit.rate: must be > 0, got %g", c.Rate))
	}
	if c.Period < 0 {
		errs = append(errs, fmt.Errorf("rate_limit.period: must not be negative, got %s", c.Period))
	}
	if c.Burst < 0 {
		errs = append(errs, fmt.Errorf("rate_limit.burst: must not be negative, got %d", c.Burst))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	d := c.withDefaults()
	if d.Period.Seconds()/d.Rate < minInterval.Seconds() {
		return fmt.Errorf("rate_limit.rate: %g per %s is more than one request per %s", c.Rate, d.Period, minInterval)
	}
	if d.Burst > int(maxWindow/interval(d)) {
		return fmt.Errorf("rate_limit.burst: %d at %g per %s takes more than %s to refill", d.Burst, d.Rate, d.Period, maxWindow)
	}
	return nil
}

// withDefaults returns c with every zero field set to its default. Burst's
// default follows Rate, so Rate must be positive.
func (c Config) withDefaults() Config {
	if c.Period == 0 {
		c.Period = defaultPeriod
	}
	if c.Burst == 0 {
		c.Burst = int(math.Ceil(c.Rate))
	}
	return c
}

// interval is the emission interval of c, defaulted and valid: the time in
// which one request's worth of quota comes back, Period/Rate rounded to the
// nanosecond.
func interval(c Config) time.Duration {
	return max(time.Duration(math.Round(float64(c.Period)/c.Rate)), 1)
}
