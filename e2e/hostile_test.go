package e2e

import (
	"strings"
	"testing"
	"time"
)

// The hostile tests make one demo service answer in a way that breaks the
// HTTP or JSON contract (the demo's hostile modes) and check, through the
// real binaries, that the gateway gives the right answer in the right
// time: the dashboard's timeout is 2s, so a body cut short, reset, too
// large or not JSON must fail well before it, and an endless or dripping
// body must be cut at it. The time bounds are correctness here, not speed:
// they have wide margins for a loaded machine.

const (
	// dashboardDeadline is the dashboard route's timeout in gateway.yaml.
	dashboardDeadline = 2 * time.Second
	// fastBound is the latest a failure that needs no deadline may
	// answer: before the deadline (reading the 8 MiB that make a body too
	// large takes most of a second on a loaded 2-CPU machine).
	fastBound = 1800 * time.Millisecond
	// lateBound is the latest a call cut at the deadline may answer.
	lateBound = dashboardDeadline + 1500*time.Millisecond
	// earlyBound is the earliest it may: the deadline less the 20ms the
	// route keeps back for writing the answer, and some slack.
	earlyBound = dashboardDeadline - 100*time.Millisecond
)

// hostileMode is what the gateway must make of one hostile mode.
type hostileMode struct {
	faults   string // PUT to the service's /_demo/faults
	status   int    // when the service is required
	code     string // the error code: of the response, or of the degraded part
	deadline bool   // the answer comes at the deadline, not before it
}

var hostileModes = map[string]hostileMode{
	"truncate":       {`{"hostile":"truncate"}`, 502, "invalid_upstream_response", false},
	"reset_mid_body": {`{"hostile":"reset_mid_body"}`, 502, "invalid_upstream_response", false},
	"garbage":        {`{"hostile":"garbage"}`, 502, "invalid_upstream_response", false},
	"huge":           {`{"hostile":"huge"}`, 502, "invalid_upstream_response", false},
	"endless":        {`{"hostile":"endless"}`, 504, "deadline_exceeded", true},
	"drip":           {`{"hostile":"drip"}`, 504, "deadline_exceeded", true},
}

// hostileOrder runs the modes in a fixed order.
var hostileOrder = []string{"truncate", "reset_mid_body", "garbage", "huge", "endless", "drip"}

// wantTook fails unless took fits mode's time bounds.
func wantTook(t *testing.T, m hostileMode, took time.Duration, a answer) {
	t.Helper()
	switch {
	case m.deadline && (took < earlyBound || took > lateBound):
		t.Errorf("answered in %v, want at the %v deadline (%v to %v): %v", took, dashboardDeadline, earlyBound, lateBound, a)
	case !m.deadline && took > fastBound:
		t.Errorf("answered in %v, want well before the %v deadline (within %v): %v", took, dashboardDeadline, fastBound, a)
	}
}

// hostileTransports are the upstream transports the hostile tests run on,
// by BRAID_UPSTREAM_TRANSPORT: each mode must end the same way on both.
var hostileTransports = []struct{ name, value string }{
	{"lean", "lean"},
	{"nethttp", "net/http"},
}

// TestHostileRequiredService: users, a required call of the dashboard,
// answers in each hostile mode, on each upstream transport. The dashboard
// fails with the mode's status and error code, naming the call, within the
// mode's time bound.
func TestHostileRequiredService(t *testing.T) {
	for _, tr := range hostileTransports {
		t.Run(tr.name, func(t *testing.T) {
			for _, name := range hostileOrder {
				m := hostileModes[name]
				t.Run(name, func(t *testing.T) {
					resetDemo(t)
					gw := ownGateway(t, "BRAID_UPSTREAM_TRANSPORT="+tr.value)
					setFaults(t, "users", m.faults)
					a := ask(t, gw, dashboardPath)
					t.Logf("%s on %s: %d %s in %v; users served %d", name, tr.value, a.status, a.code, a.took.Round(time.Millisecond), served(t, "users"))
					if a.status != m.status || a.code != m.code {
						t.Errorf("%v; want %d %s", a, m.status, m.code)
					}
					if !strings.Contains(string(a.body), `"call":"user"`) || !strings.Contains(string(a.body), `"upstream":"users"`) {
						t.Errorf("error does not name the call and its upstream: %s", a.body)
					}
					wantTook(t, m, a.took, a)
				})
			}
		})
	}
}

// TestHostileOptionalService: recommendations, an optional call of the
// dashboard, answers in each hostile mode, on each upstream transport. The
// dashboard is 200 with recommendations degraded to null, for the mode's
// reason (the Server-Timing entry of the call names the error code), within
// the mode's time bound.
func TestHostileOptionalService(t *testing.T) {
	for _, tr := range hostileTransports {
		t.Run(tr.name, func(t *testing.T) {
			for _, name := range hostileOrder {
				m := hostileModes[name]
				t.Run(name, func(t *testing.T) {
					resetDemo(t)
					gw := ownGateway(t, "BRAID_UPSTREAM_TRANSPORT="+tr.value)
					setFaults(t, "recommendations", m.faults)
					start := time.Now()
					resp, body := get(t, gw+dashboardPath)
					a := answer{status: resp.StatusCode, degraded: resp.Header.Get("Braid-Degraded"), body: body, took: time.Since(start)}
					timing := resp.Header.Get("Server-Timing")
					t.Logf("%s on %s: %d degraded %q in %v; Server-Timing %s", name, tr.value, a.status, a.degraded, a.took.Round(time.Millisecond), timing)
					wantDegraded(t, 0, a, "recommendations")
					if e := timingEntry(timing, "recommendations"); !strings.Contains(e, `desc="degraded: `+m.code+`"`) {
						t.Errorf("Server-Timing entry %q; want recommendations degraded for %s", e, m.code)
					}
					wantTook(t, m, a.took, a)
				})
			}
		})
	}
}

// timingEntry returns the Server-Timing entry of the named call, or "".
func timingEntry(header, call string) string {
	for e := range strings.SplitSeq(header, ",") {
		if e = strings.TrimSpace(e); strings.HasPrefix(e, call+";") {
			return e
		}
	}
	return ""
}

// TestUpstreamTransportKnob: BRAID_UPSTREAM_TRANSPORT reaches every
// upstream's transport field: a value that is not a transport stops the
// gateway at start-up, naming the field.
func TestUpstreamTransportKnob(t *testing.T) {
	gw, _, _, err := startGateway("BRAID_UPSTREAM_TRANSPORT=carrier-pigeon")
	if err == nil {
		gw.kill()
		t.Fatal("the gateway started with BRAID_UPSTREAM_TRANSPORT=carrier-pigeon")
	}
	for _, name := range []string{"users", "orders", "products", "notifications", "recommendations"} {
		if want := "upstreams." + name + ".transport"; !strings.Contains(err.Error(), want) {
			t.Errorf("start-up error does not name %s:\n%v", want, err)
		}
	}
}
