package ratelimit

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		errs []string // substrings, in order; none: valid
	}{
		{name: "rate only", cfg: Config{Rate: 50}},
		{name: "all set", cfg: Config{Rate: 100, Period: time.Minute, Burst: 10}},
		{name: "fractional", cfg: Config{Rate: 0.5}},
		{name: "one per microsecond", cfg: Config{Rate: 1e6}},
		{name: "zero rate", cfg: Config{}, errs: []string{"rate_limit.rate: must be > 0, got 0"}},
		{name: "negative rate", cfg: Config{Rate: -1}, errs: []string{"rate_limit.rate: must be > 0, got -1"}},
		{name: "NaN rate", cfg: Config{Rate: math.NaN()}, errs: []string{"rate_limit.rate: must be > 0, got NaN"}},
		{name: "infinite rate", cfg: Config{Rate: math.Inf(1)}, errs: []string{"rate_limit.rate: must be > 0, got +Inf"}},
		{name: "negative period", cfg: Config{Rate: 1, Period: -time.Second}, errs: []string{"rate_limit.period: must not be negative, got -1s"}},
		{name: "negative burst", cfg: Config{Rate: 1, Burst: -1}, errs: []string{"rate_limit.burst: must not be negative, got -1"}},
		{name: "too fast", cfg: Config{Rate: 2e6}, errs: []string{"rate_limit.rate: 2e+06 per 1s is more than one request per 1µs"}},
		{name: "too fast per ms", cfg: Config{Rate: 2000, Period: time.Millisecond}, errs: []string{"rate_limit.rate: 2000 per 1ms"}},
		{name: "burst too long to refill", cfg: Config{Rate: 1, Period: 24 * time.Hour, Burst: math.MaxInt32}, errs: []string{"rate_limit.burst: 2147483647 at 1 per 24h0m0s takes more than"}},
		{name: "every field", cfg: Config{Period: -1, Burst: -1}, errs: []string{"rate_limit.rate:", "rate_limit.period:", "rate_limit.burst:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.errs)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.errs) {
				t.Fatalf("Validate() = %q, want %d errors", err, len(tt.errs))
			}
			for i, want := range tt.errs {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("error %d = %q, want it to start with %q", i, lines[i], want)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		in         Config
		wantPeriod time.Duration
		wantBurst  int
		wantIv     time.Duration
	}{
		{Config{Rate: 50}, time.Second, 50, 20 * time.Millisecond},
		{Config{Rate: 2.5}, time.Second, 3, 400 * time.Millisecond},
		{Config{Rate: 0.5}, time.Second, 1, 2 * time.Second},
		{Config{Rate: 3}, time.Second, 3, 333333333},
		{Config{Rate: 100, Period: time.Minute, Burst: 5}, time.Minute, 5, 600 * time.Millisecond},
	}
	for _, tt := range tests {
		got := tt.in.withDefaults()
		if got.Period != tt.wantPeriod || got.Burst != tt.wantBurst || interval(got) != tt.wantIv {
			t.Errorf("%+v: period %s, burst %d, interval %s; want %s, %d, %s",
				tt.in, got.Period, got.Burst, interval(got), tt.wantPeriod, tt.wantBurst, tt.wantIv)
		}
	}
}

func TestNewPanicsOnInvalidConfig(t *testing.T) {
	defer func() {
		r := recover()
		msg, _ := r.(string)
		if !strings.Contains(msg, `ratelimit: New("orders"): rate_limit.rate: must be > 0`) {
			t.Fatalf("recovered %v, want the Validate error", r)
		}
	}()
	New("orders", Config{})
	t.Fatal("New did not panic")
}
