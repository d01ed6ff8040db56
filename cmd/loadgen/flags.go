package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrNotLoopback reports a target URL whose host is not a loopback address.
// The harness only ever loads the machine it runs on.
var ErrNotLoopback = errors.New("target host is not a loopback address (127.0.0.0/8, ::1, localhost)")

// errUsage reports flags that parse but make no sense together.
var errUsage = errors.New("invalid flags")

// Limits on the flags, so that one run stays bounded in count and memory.
const (
	maxRate        = 100_000
	maxConcurrency = 65_536
	maxRequests    = 50_000_000
)

// targets holds the base URLs the scenarios call, without trailing slashes.
type targets struct {
	gateway         string
	users           string
	orders          string
	products        string
	notifications   string
	recommendations string
}

// config is everything a run needs, validated by parseFlags.
type config struct {
	scenario string
	targets  targets
	plan     plan
	json     bool
}

// parseFlags parses and validates the command line. It returns
// flag.ErrHelp for -h, an error wrapping ErrNotLoopback for a target that
// is not loopback, and an error wrapping errUsage for any other bad value.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.scenario, "scenario", "all", "scenario: "+strings.Join(scenarioNames, ", ")+", or all")
	fs.StringVar(&c.targets.gateway, "gateway", "http://127.0.0.1:8080", "gateway base URL (loopback only)")
	fs.StringVar(&c.targets.users, "users-url", "http://127.0.0.1:9101", "users service base URL (loopback only)")
	fs.StringVar(&c.targets.orders, "orders-url", "http://127.0.0.1:9102", "orders service base URL (loopback only)")
	fs.StringVar(&c.targets.products, "products-url", "http://127.0.0.1:9103", "products service base URL (loopback only)")
	fs.StringVar(&c.targets.notifications, "notifications-url", "http://127.0.0.1:9104", "notifications service base URL (loopback only)")
	fs.StringVar(&c.targets.recommendations, "recommendations-url", "http://127.0.0.1:9105", "recommendations service base URL (loopback only)")
	fs.Float64Var(&c.plan.rate, "rate", 100, "requests per second, on a fixed open-loop schedule")
	fs.DurationVar(&c.plan.duration, "duration", 10*time.Second, "measured duration of each scenario")
	fs.DurationVar(&c.plan.warmup, "warmup", time.Second, "unrecorded warm-up before each scenario's measured window")
	usersFlag := fs.String("users", "1-300", "user id range LO-HI, cycled deterministically")
	userFlag := fs.Int("user", 0, "one fixed user id (overrides -users)")
	fs.IntVar(&c.plan.concurrency, "concurrency", 256, "cap on requests in flight; a request over the cap is dropped")
	fs.DurationVar(&c.plan.timeout, "timeout", 5*time.Second, "per-request timeout, from its scheduled send time")
	fs.BoolVar(&c.json, "json", false, "print one JSON object per scenario instead of a table")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	var err error
	if c.plan.ids, err = chooseIDs(fs, *usersFlag, *userFlag); err != nil {
		return config{}, err
	}
	if err := c.validate(); err != nil {
		return config{}, err
	}
	return c, nil
}

// chooseIDs returns the fixed -user id when it was given, else the -users range.
func chooseIDs(fs *flag.FlagSet, users string, user int) (idRange, error) {
	userSet := false
	fs.Visit(func(f *flag.Flag) { userSet = userSet || f.Name == "user" })
	if !userSet {
		return parseIDRange(users)
	}
	if user < 1 {
		return idRange{}, fmt.Errorf("%w: -user must be a positive id, got %d", errUsage, user)
	}
	return idRange{lo: user, hi: user}, nil
}

// validate checks the scenario, the plan and that every target is loopback.
func (c *config) validate() error {
	if c.scenario != "all" && !slices.Contains(scenarioNames, c.scenario) {
		return fmt.Errorf("%w: unknown -scenario %q (want %s, or all)", errUsage, c.scenario, strings.Join(scenarioNames, ", "))
	}
	if err := c.plan.validate(); err != nil {
		return err
	}
	for _, p := range []*string{&c.targets.gateway, &c.targets.users, &c.targets.orders,
		&c.targets.products, &c.targets.notifications, &c.targets.recommendations} {
		if err := checkLoopback(*p); err != nil {
			return err
		}
		*p = strings.TrimRight(*p, "/")
	}
	return nil
}

// validate checks that the plan is positive and bounded.
func (p plan) validate() error {
	switch {
	case !(p.rate > 0 && p.rate <= maxRate):
		return fmt.Errorf("%w: -rate must be in (0, %d], got %v", errUsage, maxRate, p.rate)
	case p.duration <= 0:
		return fmt.Errorf("%w: -duration must be positive, got %v", errUsage, p.duration)
	case p.warmup < 0:
		return fmt.Errorf("%w: -warmup must not be negative, got %v", errUsage, p.warmup)
	case p.concurrency < 1 || p.concurrency > maxConcurrency:
		return fmt.Errorf("%w: -concurrency must be in [1, %d], got %d", errUsage, maxConcurrency, p.concurrency)
	case p.timeout <= 0:
		return fmt.Errorf("%w: -timeout must be positive, got %v", errUsage, p.timeout)
	case p.total() > maxRequests:
		return fmt.Errorf("%w: -rate × (-warmup + -duration) schedules %d requests, more than %d", errUsage, p.total(), maxRequests)
	}
	return nil
}

// checkLoopback returns nil when raw is an http or https URL whose host is
// localhost or a loopback IP address, and an error wrapping ErrNotLoopback
// (or errUsage for a malformed URL) otherwise. It does not resolve names:
// the dialer checks resolved addresses again (see loopbackOnly).
func checkLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: target %q: %v", errUsage, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: target %q: scheme must be http or https", errUsage, raw)
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%w: %q", ErrNotLoopback, raw)
}

// idRange is an inclusive range of user ids, cycled by request index.
type idRange struct {
	lo, hi int
}

// parseIDRange parses "LO-HI" or a single id "N"; ids are positive and
// LO <= HI.
func parseIDRange(s string) (idRange, error) {
	loStr, hiStr, isRange := strings.Cut(s, "-")
	if !isRange {
		hiStr = loStr
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(loStr))
	hi, err2 := strconv.Atoi(strings.TrimSpace(hiStr))
	if err1 != nil || err2 != nil || lo < 1 || hi < lo {
		return idRange{}, fmt.Errorf("%w: -users %q: want LO-HI with 1 <= LO <= HI, or one id", errUsage, s)
	}
	return idRange{lo: lo, hi: hi}, nil
}

// at returns the user id of request i: lo, lo+1, …, hi, lo, … in turn.
func (r idRange) at(i int) int {
	return r.lo + i%(r.hi-r.lo+1)
}

// String formats the range as -users accepts it.
func (r idRange) String() string {
	if r.lo == r.hi {
		return strconv.Itoa(r.lo)
	}
	return fmt.Sprintf("%d-%d", r.lo, r.hi)
}
