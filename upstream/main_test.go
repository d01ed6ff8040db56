package upstream

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs the package's tests once with each transport that "auto"
// may pick for a plain http:// upstream — the lean transport, then
// net/http — so that every test of the Fetch contract holds for both. Tests
// that need one transport name it in their Config. Benchmarks name theirs
// too, and fuzzing runs once. The package fails if any test leaves a
// goroutine behind, such as a connection of a Client that was not closed.
func TestMain(m *testing.M) {
	flag.Parse()
	if autoPlainHTTP != transportLean {
		fmt.Fprintf(os.Stderr, "auto picks %s for plain http:// upstreams, want lean\n", autoPlainHTTP)
		os.Exit(1)
	}
	transports := []string{transportLean, transportNetHTTP}
	if flagSet("test.fuzz") || flagSet("test.fuzzworker") || flagSet("test.bench") {
		transports = transports[:1]
	}
	code := 0
	for _, tr := range transports {
		autoPlainHTTP = tr
		if len(transports) > 1 {
			fmt.Printf("upstream: the suite with auto = %s for plain http://\n", tr)
		}
		if c := m.Run(); c != 0 {
			fmt.Printf("upstream: FAIL with auto = %s\n", tr)
			code = c
		}
	}
	autoPlainHTTP = transportLean
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// flagSet reports whether the test flag name is set to something other
// than its zero value.
func flagSet(name string) bool {
	f := flag.Lookup(name)
	if f == nil {
		return false
	}
	switch v := f.Value.String(); v {
	case "", "false", "0":
		return false
	}
	return true
}
