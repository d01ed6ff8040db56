package upstream

import (
	"fmt"
	"sync"
	"time"
)

// Defaults of BudgetConfig.
const (
	defaultBudgetRatio        = 0.2
	defaultBudgetMinPerSecond = 3
	defaultBudgetWindow       = 10 * time.Second
	budgetBuckets             = 10
)

// BudgetConfig bounds the extra load that retries and hedges add to one
// upstream: over a rolling window, the extra tries may be at most Ratio of
// the calls, or MinPerSecond per second, whichever is more. Under a full
// outage the gateway then adds at most that much to a service that is
// already struggling. It is shared by every route calling the upstream.
type BudgetConfig struct {
	// Ratio is the most extra tries per call over the window. Default 0.2.
	Ratio float64 `yaml:"ratio"`
	// MinPerSecond is a floor of extra tries per second, so that a quiet
	// upstream can still be retried. Default 3.
	MinPerSecond float64 `yaml:"min_per_second"`
	// Window is the rolling window the ratio is taken over. Default 10s.
	Window time.Duration `yaml:"window"`
}

// Validate reports every bad field, named as in YAML.
func (c BudgetConfig) Validate() []error {
	var errs []error
	if c.Ratio < 0 {
		errs = append(errs, fmt.Errorf("ratio: must not be negative, got %v", c.Ratio))
	}
	if c.MinPerSecond < 0 {
		errs = append(errs, fmt.Errorf("min_per_second: must not be negative, got %v", c.MinPerSecond))
	}
	if c.Window < 0 || (c.Window > 0 && c.Window < budgetBuckets*time.Millisecond) {
		errs = append(errs, fmt.Errorf("window: must be at least 10ms, got %s", c.Window))
	}
	return errs
}

func (c BudgetConfig) withDefaults() BudgetConfig {
	if c.Ratio == 0 {
		c.Ratio = defaultBudgetRatio
	}
	if c.MinPerSecond == 0 {
		c.MinPerSecond = defaultBudgetMinPerSecond
	}
	if c.Window == 0 {
		c.Window = defaultBudgetWindow
	}
	return c
}

// budget is a retry budget: a ring of time buckets counting calls and the
// extra tries (retries, hedges) spent on them.
type budget struct {
	ratio  float64
	floor  float64 // extra tries allowed per window regardless of calls
	bucket time.Duration
	now    func() time.Time

	mu      sync.Mutex // guards the fields below
	head    int64      // index (in buckets since the epoch) of the newest bucket
	calls   [budgetBuckets]int64
	retries [budgetBuckets]int64
}

func newBudget(c BudgetConfig, now func() time.Time) *budget {
	c = c.withDefaults()
	return &budget{
		ratio:  c.Ratio,
		floor:  c.MinPerSecond * c.Window.Seconds(),
		bucket: c.Window / budgetBuckets,
		now:    now,
	}
}

// advance moves the ring to the current time, zeroing the buckets that
// slid out of the window. The caller holds b.mu.
func (b *budget) advance() int {
	idx := b.now().UnixNano() / int64(b.bucket)
	if gap := idx - b.head; gap > 0 {
		for i := int64(1); i <= min(gap, budgetBuckets); i++ {
			slot := (b.head + i) % budgetBuckets
			b.calls[slot], b.retries[slot] = 0, 0
		}
		b.head = idx
	}
	return int(b.head % budgetBuckets)
}

// call records one call (its first try).
func (b *budget) call() {
	b.mu.Lock()
	b.calls[b.advance()]++
	b.mu.Unlock()
}

// withdraw takes one extra try from the budget, reporting whether there
// was one to take.
func (b *budget) withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	slot := b.advance()
	var calls, retries int64
	for i := range budgetBuckets {
		calls += b.calls[i]
		retries += b.retries[i]
	}
	if float64(retries+1) > max(b.ratio*float64(calls), b.floor) {
		return false
	}
	b.retries[slot]++
	return true
}
