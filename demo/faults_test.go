package demo

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"testing"
	"testing/synctest"
	"time"
)

func TestFaultsJSON(t *testing.T) {
	b, err := json.Marshal(Faults{Latency: 50 * time.Millisecond, ErrorRate: 0.2})
	if want := `{"latency":"50ms","error_rate":0.2,"error_status":500,"down":false,"reset":false,"hostile":"","huge_bytes":9437184}`; err != nil || string(b) != want {
		t.Fatalf("Marshal = %s, %v; want %s", b, err, want)
	}
	f := Faults{Latency: time.Second, ErrorRate: 0.5}
	if err := json.Unmarshal([]byte(`{"down":true}`), &f); err != nil {
		t.Fatal(err)
	}
	if want := (Faults{Latency: time.Second, ErrorRate: 0.5, Down: true}); f != want {
		t.Errorf("partial update = %+v, want %+v", f, want)
	}
	if err := json.Unmarshal([]byte(`{"reset":true,"error_status":503}`), &f); err != nil {
		t.Fatal(err)
	}
	if want := (Faults{Latency: time.Second, ErrorRate: 0.5, ErrorStatus: 503, Down: true, Reset: true}); f != want {
		t.Errorf("partial update of reset and error_status = %+v, want %+v", f, want)
	}
	if err := json.Unmarshal([]byte(`{"error_status":500}`), &f); err != nil || f.ErrorStatus != 0 {
		t.Errorf("error_status 500 decoded to %d (%v), want 0, the default", f.ErrorStatus, err)
	}
}

func TestFaultsJSONRoundTrip(t *testing.T) {
	for _, f := range []Faults{
		{},
		{Latency: 1500 * time.Millisecond, ErrorRate: 0.1, ErrorStatus: 503},
		{ErrorRate: 1, ErrorStatus: 429, Down: true},
		{Reset: true},
		{Latency: time.Millisecond, ErrorRate: 0.25, ErrorStatus: 599, Down: true, Reset: true},
		{Hostile: HostileDrip},
		{Hostile: HostileHuge, HugeBytes: 7 << 20},
	} {
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		var got Faults
		if err := json.Unmarshal(b, &got); err != nil || got != f {
			t.Errorf("%+v encoded as %s decodes to %+v, %v", f, b, got, err)
		}
	}
}

func TestPutFaults(t *testing.T) {
	s := newTestService(t, "orders", ServiceOptions{})
	r := do(t, s, http.MethodPut, "/_demo/faults", `{"latency":"80ms","error_rate":0.25}`)
	wantStatus(t, r, http.StatusOK)
	want := Faults{Latency: 80 * time.Millisecond, ErrorRate: 0.25}
	if got := decode[Faults](t, r); got != want || s.Faults() != want {
		t.Fatalf("after PUT: response %+v, service %+v, want %+v", got, s.Faults(), want)
	}
	r = do(t, s, http.MethodPut, "/_demo/faults", `{"down":true}`)
	want.Down = true
	if got := decode[Faults](t, r); got != want {
		t.Fatalf("PUT of one field = %+v, want the others kept: %+v", got, want)
	}
	for _, tc := range []struct{ body, mention string }{
		{`{"latency":"soon"}`, "latency"},
		{`{"latency":"-1s"}`, "latency"},
		{`{"latency":80}`, "latency"},
		{`{"error_rate":1.5}`, "error_rate"},
		{`{"error_rate":-0.1}`, "error_rate"},
		{`{"error_rate":"high"}`, "error_rate"},
		{`{"down":"yes"}`, "down"},
		{`{"error_status":200}`, "error_status"},
		{`{"error_status":600}`, "error_status"},
		{`{"error_status":-503}`, "error_status"},
		{`{"error_status":503.5}`, "error_status"},
		{`{"error_status":"503"}`, "error_status"},
		{`{"reset":1}`, "reset"},
		{`{"slow":true}`, `"slow"`},
		{`not json`, "JSON"},
		{``, "JSON"},
		{`{"down":false} {}`, "more data"},
		{`{"hostile":"explode"}`, "hostile"},
		{`{"hostile":"Truncate"}`, "reset_mid_body"}, // the message lists the modes
		{`{"hostile":true}`, "hostile"},
		{`{"huge_bytes":1}`, "huge_bytes"},
		{`{"huge_bytes":2147483648}`, "huge_bytes"},
	} {
		wantError(t, do(t, s, http.MethodPut, "/_demo/faults", tc.body), http.StatusBadRequest, tc.mention)
	}
	if got := decode[Faults](t, get(t, s, "/_demo/faults")); got != want {
		t.Errorf("rejected PUTs changed the faults to %+v, want %+v", got, want)
	}
	if s.Requests() != 0 {
		t.Errorf("admin requests were counted: %d", s.Requests())
	}
}

func TestSetFaultsValidates(t *testing.T) {
	s := newTestService(t, "users", ServiceOptions{})
	for _, f := range []Faults{{Latency: -time.Second}, {ErrorRate: 1.01}, {ErrorRate: math.NaN()}, {ErrorStatus: 399}, {ErrorStatus: 200}, {ErrorStatus: 600}, {Hostile: "boom"}, {HugeBytes: -1}, {HugeBytes: 1 << 31}} {
		if err := s.SetFaults(f); err == nil {
			t.Errorf("SetFaults(%+v) accepted", f)
		}
	}
	if s.Faults() != (Faults{}) {
		t.Errorf("rejected faults were applied: %+v", s.Faults())
	}
}

func TestDown(t *testing.T) {
	s := newTestService(t, "products", ServiceOptions{Faults: Faults{Down: true}})
	for _, target := range []string{"/products/1", "/products?ids=1", "/healthz", "/nowhere"} {
		wantError(t, get(t, s, target), http.StatusServiceUnavailable, "service down")
	}
	wantStatus(t, get(t, s, "/_demo/faults"), http.StatusOK)
	wantStatus(t, get(t, s, "/_demo/stats"), http.StatusOK)
	wantStatus(t, do(t, s, http.MethodPut, "/_demo/faults", `{"down":false}`), http.StatusOK)
	wantStatus(t, get(t, s, "/products/1"), http.StatusOK)
}

func TestErrorRateExtremes(t *testing.T) {
	s := newTestService(t, "users", ServiceOptions{Faults: Faults{ErrorRate: 1}})
	for range 100 {
		wantError(t, get(t, s, "/users/1"), http.StatusInternalServerError, "injected failure")
	}
	if err := s.SetFaults(Faults{ErrorRate: 0}); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		wantStatus(t, get(t, s, "/users/1"), http.StatusOK)
	}
}

func TestErrorStatus(t *testing.T) {
	s := newTestService(t, "users", ServiceOptions{Faults: Faults{ErrorRate: 1, ErrorStatus: http.StatusServiceUnavailable}})
	wantError(t, get(t, s, "/users/1"), http.StatusServiceUnavailable, "injected failure")
	wantStatus(t, do(t, s, http.MethodPut, "/_demo/faults", `{"error_status":429}`), http.StatusOK)
	wantError(t, get(t, s, "/users/1"), http.StatusTooManyRequests, "injected failure")
	wantStatus(t, do(t, s, http.MethodPut, "/_demo/faults", `{"error_rate":0}`), http.StatusOK)
	wantStatus(t, get(t, s, "/users/1"), http.StatusOK)
	if got := decode[Faults](t, get(t, s, "/_demo/faults")); got != (Faults{ErrorStatus: 429}) {
		t.Errorf("faults = %+v, want error_status kept at 429 with error_rate 0", got)
	}
}

// constSource is a rand.Source that always returns the same value.
type constSource uint64

func (c constSource) Uint64() uint64 { return uint64(c) }

func TestErrorRateUsesInjectedSource(t *testing.T) {
	half := Faults{ErrorRate: 0.5}
	lucky := newTestService(t, "users", ServiceOptions{Faults: half, Rand: constSource(math.MaxUint64)})
	unlucky := newTestService(t, "users", ServiceOptions{Faults: half, Rand: constSource(0)})
	for range 20 {
		wantStatus(t, get(t, lucky, "/users/1"), http.StatusOK)
		wantStatus(t, get(t, unlucky, "/users/1"), http.StatusInternalServerError)
	}

	// Two services with equal seeds fail the same requests, about half of them.
	a := newTestService(t, "users", ServiceOptions{Faults: half, Rand: rand.NewPCG(1, 2)})
	b := newTestService(t, "users", ServiceOptions{Faults: half, Rand: rand.NewPCG(1, 2)})
	failed := 0
	for i := range 1000 {
		ra, rb := get(t, a, "/users/1"), get(t, b, "/users/1")
		if ra.status != rb.status {
			t.Fatalf("request %d: statuses %d and %d differ with equal seeds", i, ra.status, rb.status)
		}
		if ra.status == http.StatusInternalServerError {
			failed++
		}
	}
	if failed < 400 || failed > 600 {
		t.Errorf("rate 0.5 failed %d of 1000 requests", failed)
	}
}

func TestLatencyIsAdded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestService(t, "users", ServiceOptions{Faults: Faults{Latency: 50 * time.Millisecond}})
		start := time.Now()
		wantStatus(t, get(t, s, "/users/1"), http.StatusOK)
		if waited := time.Since(start); waited != 50*time.Millisecond {
			t.Errorf("request took %v of bubble time, want the 50ms latency", waited)
		}
		start = time.Now()
		wantStatus(t, get(t, s, "/_demo/faults"), http.StatusOK)
		if waited := time.Since(start); waited != 0 {
			t.Errorf("admin request was delayed %v", waited)
		}
	})
}

func TestLatencyStopsWhenRequestCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTestService(t, "orders", ServiceOptions{Faults: Faults{Latency: time.Hour}})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan response, 1)
		start := time.Now()
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "/users/1/orders", nil)
			done <- serve(s, req)
		}()
		synctest.Wait() // the handler is now blocked in the latency wait
		cancel()
		r := <-done
		if waited := time.Since(start); waited != 0 {
			t.Errorf("handler waited %v after cancellation, want 0", waited)
		}
		wantError(t, r, http.StatusServiceUnavailable, "cancelled")
	})
}

func TestLatencyWithCancelledContextEndsHandler(t *testing.T) {
	s := newTestService(t, "products", ServiceOptions{Faults: Faults{Latency: 24 * time.Hour}})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "/products/1", nil)
	wantError(t, serve(s, req), http.StatusServiceUnavailable, "cancelled")
}
