package breaker

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

var validateTests = []struct {
	name string
	cfg  Config
	want []string // the errors, in order; each starts with its YAML field
}{
	{name: "zero config", cfg: Config{}},
	{
		name: "every field set",
		cfg: Config{
			Window: 30 * time.Second, MinCalls: 20, FailureRate: 1, SlowCallDuration: 2 * time.Second,
			SlowCallRate: 0.3, ConsecutiveFailures: 7, OpenDuration: 20 * time.Second,
			MaxOpenDuration: 20 * time.Second, HalfOpenProbes: 1,
		},
	},
	{name: "shortest window", cfg: Config{Window: 10 * time.Millisecond}},
	{name: "max_open_duration alone below the default open_duration", cfg: Config{MaxOpenDuration: time.Second}},
	{name: "open_duration alone above the default max_open_duration", cfg: Config{OpenDuration: time.Minute}},
	{
		name: "window too short",
		cfg:  Config{Window: 5 * time.Millisecond},
		want: []string{"window: must be at least 10ms (10 buckets of 1ms), got 5ms"},
	},
	{
		name: "failure_rate above 1",
		cfg:  Config{FailureRate: 1.5},
		want: []string{"failure_rate: must be between 0 and 1, got 1.5"},
	},
	{
		name: "slow_call_rate not a number",
		cfg:  Config{SlowCallRate: math.NaN()},
		want: []string{"slow_call_rate: must be between 0 and 1, got NaN"},
	},
	{
		name: "max_open_duration below open_duration",
		cfg:  Config{OpenDuration: 10 * time.Second, MaxOpenDuration: 5 * time.Second},
		want: []string{"max_open_duration: must not be shorter than open_duration (10s), got 5s"},
	},
	{
		name: "several fields bad",
		cfg:  Config{Window: time.Millisecond, FailureRate: 2, OpenDuration: time.Minute, MaxOpenDuration: time.Second},
		want: []string{
			"window: must be at least 10ms (10 buckets of 1ms), got 1ms",
			"failure_rate: must be between 0 and 1, got 2",
			"max_open_duration: must not be shorter than open_duration (1m0s), got 1s",
		},
	},
	{
		name: "every field bad at once",
		cfg: Config{
			Window: -time.Second, MinCalls: -1, FailureRate: -0.5, SlowCallDuration: -time.Millisecond,
			SlowCallRate: 2, ConsecutiveFailures: -2, OpenDuration: -time.Second,
			MaxOpenDuration: -time.Minute, HalfOpenProbes: -3,
		},
		want: []string{
			"window: must not be negative, got -1s",
			"min_calls: must not be negative, got -1",
			"failure_rate: must be between 0 and 1, got -0.5",
			"slow_call_duration: must not be negative, got -1ms",
			"slow_call_rate: must be between 0 and 1, got 2",
			"consecutive_failures: must not be negative, got -2",
			"open_duration: must not be negative, got -1s",
			"max_open_duration: must not be negative, got -1m0s",
			"half_open_probes: must not be negative, got -3",
		},
	},
}

func TestValidate(t *testing.T) {
	for _, tt := range validateTests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := New(tt.cfg, Options{}); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tt.want) {
				t.Errorf("Validate():\n got %q\nwant %q", got, tt.want)
			}
			if _, newErr := New(tt.cfg, Options{}); newErr == nil || newErr.Error() != err.Error() {
				t.Errorf("New: got %v, want Validate's error", newErr)
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	defaults := Config{
		Window: 10 * time.Second, MinCalls: 10, FailureRate: 0.5, SlowCallDuration: time.Second,
		SlowCallRate: 0.8, ConsecutiveFailures: 5, OpenDuration: 5 * time.Second,
		MaxOpenDuration: 20 * time.Second, HalfOpenProbes: 3,
	}
	tests := []struct {
		name string
		cfg  Config
		want Config
	}{
		{name: "zero config", cfg: Config{}, want: defaults},
		{name: "set fields are kept", cfg: defaults, want: defaults},
		{
			name: "open_duration alone raises max_open_duration",
			cfg:  Config{OpenDuration: time.Minute},
			want: with(defaults, func(c *Config) { c.OpenDuration, c.MaxOpenDuration = time.Minute, time.Minute }),
		},
		{
			name: "max_open_duration alone lowers open_duration",
			cfg:  Config{MaxOpenDuration: 2 * time.Second},
			want: with(defaults, func(c *Config) { c.OpenDuration, c.MaxOpenDuration = 2*time.Second, 2*time.Second }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.WithDefaults(); got != tt.want {
				t.Errorf("WithDefaults() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// with returns c changed by f.
func with(c Config, f func(*Config)) Config {
	f(&c)
	return c
}
