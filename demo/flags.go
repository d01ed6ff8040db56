package demo

import (
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// FirstPort is the port of the first service in ServiceNames under cmd/demo;
// the others follow in order (users 9101 … recommendations 9105).
const FirstPort = 9101

// Flags are the command-line settings of cmd/demo. Register binds them to a
// flag.FlagSet; after parsing, Options turns them into Start options.
type Flags struct {
	// DSN is -db, the PostgreSQL DSN; empty means the caller's fallback.
	DSN string
	// Host is -host; when set it replaces the host of every address.
	Host string

	addrs  map[string]*string // -<service>-addr
	faults map[string]Faults  // -latency, -error-rate, -down
}

// Register defines the flags on fs: -db, -host, -<service>-addr for each of
// ServiceNames, -latency, -error-rate and -down.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.DSN, "db", "", "PostgreSQL DSN (default $DATABASE_URL, else in-memory data)")
	fs.StringVar(&f.Host, "host", "", "listen host for every service, e.g. 0.0.0.0 (replaces the host of each -*-addr)")
	f.addrs = make(map[string]*string, len(ServiceNames))
	for i, name := range ServiceNames {
		f.addrs[name] = fs.String(name+"-addr", "127.0.0.1:"+strconv.Itoa(FirstPort+i), "listen address of the "+name+" service")
	}
	f.faults = map[string]Faults{}
	fs.Func("latency", "added latency per service, e.g. users=50ms,orders=80ms", f.setLatency)
	fs.Func("error-rate", "fraction 0..1 of requests failed with 500 per service, e.g. products=0.1", f.setErrorRate)
	fs.Func("down", "services answering 503 to every request, e.g. notifications,orders", f.setDown)
}

// Options returns Start options for the parsed flags, without a Store.
func (f *Flags) Options() (Options, error) {
	opts := Options{Addrs: make(map[string]string, len(f.addrs)), Faults: f.faults}
	for _, name := range ServiceNames {
		addr := *f.addrs[name]
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return Options{}, fmt.Errorf("-%s-addr: %w", name, err)
		}
		if f.Host != "" {
			addr = net.JoinHostPort(f.Host, port)
		}
		opts.Addrs[name] = addr
	}
	return opts, nil
}

// setLatency parses "name=duration,...".
func (f *Flags) setLatency(list string) error {
	return f.eachPair(list, func(name, value string, fl *Faults) error {
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 {
			return fmt.Errorf("%s: invalid latency %q, want a duration like 50ms", name, value)
		}
		fl.Latency = d
		return nil
	})
}

// setErrorRate parses "name=fraction,...".
func (f *Flags) setErrorRate(list string) error {
	return f.eachPair(list, func(name, value string, fl *Faults) error {
		rate, err := strconv.ParseFloat(value, 64)
		if err != nil || !(rate >= 0 && rate <= 1) {
			return fmt.Errorf("%s: invalid error rate %q, want a number from 0 to 1", name, value)
		}
		fl.ErrorRate = rate
		return nil
	})
}

// setDown parses "name,...".
func (f *Flags) setDown(list string) error {
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if err := checkName(name); err != nil {
			return err
		}
		fl := f.faults[name]
		fl.Down = true
		f.faults[name] = fl
	}
	return nil
}

// eachPair calls set with each name=value of a comma list and the faults
// of that service, which it stores back.
func (f *Flags) eachPair(list string, set func(name, value string, fl *Faults) error) error {
	for pair := range strings.SplitSeq(list, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return fmt.Errorf("%q: want service=value", pair)
		}
		if err := checkName(name); err != nil {
			return err
		}
		fl := f.faults[name]
		if err := set(name, value, &fl); err != nil {
			return err
		}
		f.faults[name] = fl
	}
	return nil
}
