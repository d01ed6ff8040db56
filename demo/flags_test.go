package demo

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// parseFlags parses args with a fresh Flags.
func parseFlags(args ...string) (*Flags, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f Flags
	f.Register(fs)
	return &f, fs.Parse(args)
}

func TestFlagsDefaults(t *testing.T) {
	f, err := parseFlags()
	if err != nil {
		t.Fatal(err)
	}
	opts, err := f.Options()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"users": "127.0.0.1:9101", "orders": "127.0.0.1:9102", "products": "127.0.0.1:9103",
		"notifications": "127.0.0.1:9104", "recommendations": "127.0.0.1:9105",
	}
	for name, addr := range want {
		if opts.Addrs[name] != addr {
			t.Errorf("%s address = %q, want %q", name, opts.Addrs[name], addr)
		}
	}
	if len(opts.Faults) != 0 || f.DSN != "" {
		t.Errorf("defaults carry faults %v or DSN %q", opts.Faults, f.DSN)
	}
}

func TestFlagsParse(t *testing.T) {
	f, err := parseFlags("-db", "postgres://x", "-host", "0.0.0.0", "-orders-addr", "127.0.0.1:7000",
		"-latency", "users=50ms, orders=80ms", "-error-rate", "products=0.1", "-down", "notifications,users")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := f.Options()
	if err != nil {
		t.Fatal(err)
	}
	if f.DSN != "postgres://x" || opts.Addrs["orders"] != "0.0.0.0:7000" || opts.Addrs["users"] != "0.0.0.0:9101" {
		t.Errorf("DSN %q, addresses %v", f.DSN, opts.Addrs)
	}
	want := map[string]Faults{
		"users":         {Latency: 50 * time.Millisecond, Down: true},
		"orders":        {Latency: 80 * time.Millisecond},
		"products":      {ErrorRate: 0.1},
		"notifications": {Down: true},
	}
	for name, fl := range want {
		if opts.Faults[name] != fl {
			t.Errorf("%s faults = %+v, want %+v", name, opts.Faults[name], fl)
		}
	}
}

func TestFlagsRejectBadValues(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		mention string
	}{
		{[]string{"-latency", "users=fast"}, "-latency"},
		{[]string{"-latency", "users"}, "-latency"},
		{[]string{"-latency", "payments=5ms"}, "payments"},
		{[]string{"-latency", "users=-5ms"}, "-latency"},
		{[]string{"-error-rate", "products=2"}, "-error-rate"},
		{[]string{"-error-rate", "products=NaN"}, "-error-rate"},
		{[]string{"-down", "everything"}, "-down"},
		{[]string{"-nope"}, "-nope"},
	} {
		_, err := parseFlags(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%q: err = %v, want one naming %s", tc.args, err, tc.mention)
		}
	}
	f, err := parseFlags("-users-addr", "9101")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Options(); err == nil || !strings.Contains(err.Error(), "-users-addr") {
		t.Errorf("address without port: err = %v", err)
	}
}
