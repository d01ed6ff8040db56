package aggregate

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/braidgw/braid/upstream"
)

func dashboardCalls() []CallConfig {
	return []CallConfig{
		{Name: "user", Upstream: "users", Path: "/users/{id}"},
		{Name: "orders", Upstream: "orders", Path: "/users/{id}/orders"},
		{Name: "notifications", Upstream: "notifications", Path: "/users/{id}/notifications", Query: map[string]string{"unread": "true"}, Optional: true},
		{Name: "recommendations", Upstream: "recommendations", Path: "/users/{id}/recommendations", Query: map[string]string{"limit": "{limit}"}, Optional: true},
	}
}

// TestDashboardRunsCallsInParallel proves the four independent calls are in
// flight at once: every upstream handler waits at a barrier for all four, so
// a plan that ran them one after another would never get past the first.
func TestDashboardRunsCallsInParallel(t *testing.T) {
	rec := newRecorder()
	bar := newBarrier(4)
	handler := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !bar.wait(r.Context()) {
				return
			}
			_, _ = w.Write([]byte(body))
		}
	}
	ups := map[string]upstream.Fetch{
		"users":           serve(t, rec, "users", handler(`{"id":1,"name":"Ada"}`)),
		"orders":          serve(t, rec, "orders", handler(`[{"id":10}]`)),
		"notifications":   serve(t, rec, "notifications", handler(`[{"id":5,"read":false}]`)),
		"recommendations": serve(t, rec, "recommendations", handler(`[{"product_id":3}]`)),
	}
	p := mustCompile(t, dashboardCalls(), []string{"id", "limit"}, ups)
	res, body, err := execute(t, p, map[string]string{"id": "1", "limit": "5"})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	peak, calls, _ := rec.snapshot()
	if peak != 4 {
		t.Errorf("peak in-flight upstream calls = %d, want 4", peak)
	}
	wantCalls := map[string]int{
		"users GET /users/1":                                   1,
		"orders GET /users/1/orders":                           1,
		"notifications GET /users/1/notifications?unread=true": 1,
		"recommendations GET /users/1/recommendations?limit=5": 1,
	}
	if !mapsEqual(calls, wantCalls) {
		t.Errorf("upstream calls = %v, want %v", calls, wantCalls)
	}
	want := `{"user":{"id":1,"name":"Ada"},"orders":[{"id":10}],"notifications":[{"id":5,"read":false}],"recommendations":[{"product_id":3}]}`
	if body != want {
		t.Errorf("body =\n%s\nwant\n%s", body, want)
	}
	if d := res.Degraded(); len(d) != 0 {
		t.Errorf("Degraded = %v, want none", d)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestOutputFollowsDeclaredOrder makes the calls finish in reverse order and
// checks the document keeps the declared order, byte for byte, every time.
func TestOutputFollowsDeclaredOrder(t *testing.T) {
	rec := newRecorder()
	// Each call waits until every call declared after it has finished.
	names := []string{"a", "b", "c"}
	finished := map[string]chan struct{}{}
	for _, n := range names {
		finished[n] = make(chan struct{}, 8)
	}
	ups := map[string]upstream.Fetch{}
	var calls []CallConfig
	var (
		orderMu sync.Mutex
		order   []string // names in the order their answers were written
	)
	for i, n := range names {
		after := names[i+1:]
		ups[n] = serve(t, rec, n, func(w http.ResponseWriter, r *http.Request) {
			for _, a := range after {
				select {
				case <-finished[a]:
					finished[a] <- struct{}{} // let the next waiter see it too
				case <-r.Context().Done():
					return
				}
			}
			_, _ = w.Write([]byte(`{"name":"` + n + `"}`))
			orderMu.Lock()
			order = append(order, n)
			orderMu.Unlock()
			finished[n] <- struct{}{}
		})
		calls = append(calls, CallConfig{Name: n, Upstream: n, Path: "/" + n})
	}
	p := mustCompile(t, calls, nil, ups)
	_, body, err := execute(t, p, nil)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if want := `{"a":{"name":"a"},"b":{"name":"b"},"c":{"name":"c"}}`; body != want {
		t.Errorf("body = %s, want %s", body, want)
	}
	orderMu.Lock()
	defer orderMu.Unlock()
	if !slices.Equal(order, []string{"c", "b", "a"}) {
		t.Errorf("finish order = %v, want [c b a] (the test must make later calls finish first)", order)
	}
}

// TestDependentCallWaitsOnlyForItsDependency: "team" references user.team_id
// and must start after "user" has answered; "orders" is independent and must
// be in flight while "user" is still waiting for it.
func TestDependentCallWaitsOnlyForItsDependency(t *testing.T) {
	rec := newRecorder()
	ordersArrived := make(chan struct{})
	ups := map[string]upstream.Fetch{
		"users": serve(t, rec, "users", func(w http.ResponseWriter, r *http.Request) {
			select { // user answers only once orders is in flight
			case <-ordersArrived:
			case <-r.Context().Done():
				return
			}
			_, _ = w.Write([]byte(`{"id":1,"team_id":"t/7"}`))
		}),
		"orders": serve(t, rec, "orders", func(w http.ResponseWriter, _ *http.Request) {
			close(ordersArrived)
			_, _ = w.Write([]byte(`[]`))
		}),
		"teams": serve(t, rec, "teams", static(`{"id":"t/7","name":"core"}`)),
	}
	calls := []CallConfig{
		{Name: "team", Upstream: "teams", Path: "/teams/{user.team_id}", Query: map[string]string{"owner": "{user.id}"}},
		{Name: "user", Upstream: "users", Path: "/users/{id}"},
		{Name: "orders", Upstream: "orders", Path: "/users/{id}/orders"},
	}
	p := mustCompile(t, calls, []string{"id"}, ups)
	_, body, err := execute(t, p, map[string]string{"id": "1"})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	_, _, log := rec.snapshot()
	teamAt := slices.Index(log, "teams GET /teams/t%2F7?owner=1")
	userAt := slices.Index(log, "users GET /users/1")
	if teamAt < 0 || userAt < 0 || teamAt < userAt {
		t.Fatalf("request log = %v: want the team request, with the user's escaped team_id, after the user request", log)
	}
	if want := `{"team":{"id":"t/7","name":"core"},"user":{"id":1,"team_id":"t/7"},"orders":[]}`; body != want {
		t.Errorf("body = %s, want %s", body, want)
	}
}

func TestOptionalAndRequiredFailures(t *testing.T) {
	tests := []struct {
		name         string
		notifs       http.HandlerFunc
		users        http.HandlerFunc
		wantBody     string
		wantDegraded []string
		wantCall     string // failing call named by the error; "" for success
		wantStatus   int
	}{
		{
			name:         "optional 500 becomes null",
			users:        static(`{"id":1}`),
			notifs:       status(500, `{"error":"boom"}`),
			wantBody:     `{"user":{"id":1},"notifications":null,"greeting":null}`,
			wantDegraded: []string{"notifications", "greeting"},
		},
		{
			name:         "optional non-JSON becomes null",
			users:        static(`{"id":1}`),
			notifs:       static(`<html>oops</html>`),
			wantBody:     `{"user":{"id":1},"notifications":null,"greeting":null}`,
			wantDegraded: []string{"notifications", "greeting"},
		},
		{name: "required 500 fails the request", users: status(500, `{}`), notifs: static(`[]`), wantCall: "user", wantStatus: 500},
		{name: "required 404 fails the request", users: status(404, `{}`), notifs: static(`[]`), wantCall: "user", wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			ups := map[string]upstream.Fetch{
				"users":         serve(t, rec, "users", tt.users),
				"notifications": serve(t, rec, "notifications", tt.notifs),
				"greetings":     serve(t, rec, "greetings", static(`"hi"`)),
			}
			calls := []CallConfig{
				{Name: "user", Upstream: "users", Path: "/users/{id}"},
				{Name: "notifications", Upstream: "notifications", Path: "/n/{id}", Optional: true},
				// greeting depends on the optional call: skipped when it fails.
				{Name: "greeting", Upstream: "greetings", Path: "/g/{notifications.id}", Optional: true},
			}
			p := mustCompile(t, calls, []string{"id"}, ups)
			res, body, err := execute(t, p, map[string]string{"id": "1"})
			if tt.wantCall != "" {
				var ce *CallError
				var se *upstream.StatusError
				if !errors.As(err, &ce) || ce.Call != tt.wantCall || !errors.As(err, &se) || se.Status != tt.wantStatus {
					t.Fatalf("err = %v, want a CallError for %q with upstream status %d", err, tt.wantCall, tt.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if body != tt.wantBody {
				t.Errorf("body = %s, want %s", body, tt.wantBody)
			}
			if got := res.Degraded(); !slices.Equal(got, tt.wantDegraded) {
				t.Errorf("Degraded = %v, want %v", got, tt.wantDegraded)
			}
			if errs := res.Errors(); len(errs) != 2 || !errors.Is(errs[1], ErrDependencyFailed) {
				t.Errorf("Errors = %v, want the notifications failure and a dependency failure", errs)
			}
			if n := rec.total("greetings"); n != 0 {
				t.Errorf("greetings called %d times, want 0 (its dependency failed)", n)
			}
		})
	}
}

// TestRequiredFailureCancelsOthers: when a required call fails, calls still
// in flight are cancelled rather than left running.
func TestRequiredFailureCancelsOthers(t *testing.T) {
	rec := newRecorder()
	cancelled, slowArrived := make(chan struct{}), make(chan struct{})
	ups := map[string]upstream.Fetch{
		"users": serve(t, rec, "users", func(w http.ResponseWriter, r *http.Request) {
			select { // fail only once the slow call is in flight
			case <-slowArrived:
			case <-r.Context().Done():
			}
			w.WriteHeader(502)
		}),
		"slow": serve(t, rec, "slow", func(w http.ResponseWriter, r *http.Request) {
			close(slowArrived)
			<-r.Context().Done()
			close(cancelled)
		}),
	}
	p := mustCompile(t, []CallConfig{
		{Name: "slow", Upstream: "slow", Path: "/slow"},
		{Name: "user", Upstream: "users", Path: "/users/1"},
	}, nil, ups)
	_, _, err := execute(t, p, nil)
	var ce *CallError
	if !errors.As(err, &ce) || ce.Call != "user" {
		t.Fatalf("err = %v, want the user call's failure", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v: the plan waited for the slow call instead of cancelling it", err)
	}
	select { // the upstream saw the cancellation (bounded wait, not a speed check)
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Error("slow upstream's request was never cancelled")
	}
}

func TestTemplateEscaping(t *testing.T) {
	tests := []struct {
		id       string
		wantPath string
	}{
		{"42", "/users/42/orders"},
		{"a/b", "/users/a%2Fb/orders"},
		{"..%2Fadmin", "/users/..%252Fadmin/orders"},
		{"1?x=y", "/users/1%3Fx=y/orders"},
		{"a b#c", "/users/a%20b%23c/orders"},
		{`a\b`, "/users/a%5Cb/orders"},
		{`..%5C..`, "/users/..%255C../orders"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			rec := newRecorder()
			ups := map[string]upstream.Fetch{"orders": serve(t, rec, "orders", static(`[]`))}
			p := mustCompile(t, []CallConfig{{Name: "orders", Upstream: "orders", Path: "/users/{id}/orders", Query: map[string]string{"q": "{id}"}}}, []string{"id"}, ups)
			if _, _, err := execute(t, p, map[string]string{"id": tt.id}); err != nil {
				t.Fatalf("Execute: %v", err)
			}
			_, _, log := rec.snapshot()
			if len(log) != 1 || !strings.HasPrefix(log[0], "orders GET "+tt.wantPath+"?q=") {
				t.Errorf("upstream saw %v, want one request to %s", log, tt.wantPath)
			}
		})
	}
	for _, bad := range []string{"..", ".", "", "../admin", "a/./b", `..\..\admin`, `a\..\b`, `\.`, `./`} {
		t.Run("reject "+bad, func(t *testing.T) {
			rec := newRecorder()
			ups := map[string]upstream.Fetch{"orders": serve(t, rec, "orders", static(`[]`))}
			p := mustCompile(t, []CallConfig{{Name: "orders", Upstream: "orders", Path: "/users/{id}/orders"}}, []string{"id"}, ups)
			_, _, err := execute(t, p, map[string]string{"id": bad})
			var ie *InputError
			if !errors.As(err, &ie) || ie.Param != "id" {
				t.Errorf("err = %v, want an InputError for id", err)
			}
			if n := rec.total("orders"); n != 0 {
				t.Errorf("upstream called %d times, want 0", n)
			}
		})
	}
}

// TestRawPartsAreSplicedUnchanged: a part nothing looks into keeps the
// upstream's bytes: member order, spacing and number precision.
func TestRawPartsAreSplicedUnchanged(t *testing.T) {
	raw := `{ "z": 1, "a": [1, 2.50, 12345678901234567890123], "s": "\u00e9\"x" }`
	rec := newRecorder()
	ups := map[string]upstream.Fetch{"u": serve(t, rec, "u", static("\n"+raw+"\n"))}
	p := mustCompile(t, []CallConfig{{Name: "x", As: "thing", Upstream: "u", Path: "/x"}, {Name: "y", Upstream: "u", Path: "/y", Hidden: true}}, nil, ups)
	_, body, err := execute(t, p, nil)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if want := `{"thing":` + raw + `}`; body != want {
		t.Errorf("body = %s, want %s", body, want)
	}
}

// TestPanicInCallBecomesError: a panicking call fails its request with
// ErrPanic instead of crashing the process.
func TestPanicInCallBecomesError(t *testing.T) {
	boom := func(context.Context, *upstream.Request) (*upstream.Response, error) { panic("boom") }
	p := mustCompile(t, []CallConfig{{Name: "x", Upstream: "u", Path: "/x"}}, nil, map[string]upstream.Fetch{"u": boom})
	_, _, err := execute(t, p, nil)
	if !errors.Is(err, ErrPanic) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v, want ErrPanic carrying the panic value", err)
	}
}

// TestCallTimeout: a call's own timeout cuts it inside the route deadline;
// an optional call that hits it degrades, the rest of the response stands.
func TestCallTimeout(t *testing.T) {
	rec := newRecorder()
	ups := map[string]upstream.Fetch{
		"users": serve(t, rec, "users", static(`{"id":1}`)),
		"slow":  serve(t, rec, "slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }),
	}
	p := mustCompile(t, []CallConfig{
		{Name: "user", Upstream: "users", Path: "/u"},
		{Name: "recs", Upstream: "slow", Path: "/r", Optional: true, Timeout: 50 * time.Millisecond},
	}, nil, ups)
	res, body, err := execute(t, p, nil) // the route deadline is 5s
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if want := `{"user":{"id":1},"recs":null}`; body != want {
		t.Errorf("body = %s, want %s", body, want)
	}
	if errs := res.Errors(); len(errs) != 1 || !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Errorf("Errors = %v, want the recs call's deadline", errs)
	}
}

// TestBadDataFromACallIsBlamedOnItsUpstream: a value from one call's result
// that another call cannot use fails that call with a *DataError naming
// the call and upstream that sent it, and the call is never made.
func TestBadDataFromACallIsBlamedOnItsUpstream(t *testing.T) {
	tests := []struct {
		name     string
		user     string // the users upstream's answer
		wantPath string // teams' request path; "" when refused
		wantMsg  string // in the DataError's message
	}{
		{name: "traversal", user: `{"team":"../../admin"}`, wantMsg: `"../../admin" cannot be used as a path segment`},
		{name: "backslash traversal", user: `{"team":"..\\..\\admin"}`, wantMsg: `cannot be used as a path segment`},
		{name: "dot", user: `{"team":"."}`, wantMsg: `cannot be used as a path segment`},
		{name: "empty", user: `{"team":""}`, wantMsg: `cannot be used as a path segment`},
		{name: "null", user: `{"team":null}`, wantMsg: "is missing or null"},
		{name: "missing", user: `{}`, wantMsg: "is missing or null"},
		{name: "object", user: `{"team":{"id":1}}`, wantMsg: "not a string or number"},
		{name: "slash is escaped, not refused", user: `{"team":"a/b"}`, wantPath: "/teams/a%2Fb"},
		{name: "number", user: `{"team":7}`, wantPath: "/teams/7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			ups := map[string]upstream.Fetch{
				"users": serve(t, rec, "users", static(tt.user)),
				"teams": serve(t, rec, "teams", static(`{}`)),
			}
			p := mustCompile(t, []CallConfig{
				{Name: "user", Upstream: "users", Path: "/users/{id}"},
				{Name: "team", Upstream: "teams", Path: "/teams/{user.team}"},
			}, []string{"id"}, ups)
			_, _, err := execute(t, p, map[string]string{"id": "1"})
			_, calls, _ := rec.snapshot()
			if tt.wantPath != "" {
				if err != nil || calls["teams GET "+tt.wantPath] != 1 {
					t.Fatalf("Execute = %v, teams saw %v; want success and one call to %s", err, calls, tt.wantPath)
				}
				return
			}
			var ce *CallError
			var de *DataError
			var ie *InputError
			switch {
			case !errors.As(err, &ce) || ce.Call != "team" || ce.Upstream != "teams":
				t.Errorf("err = %v, want the team call's *CallError", err)
			case !errors.As(err, &de) || de.Call != "user" || de.Upstream != "users" || de.Ref != "user.team":
				t.Errorf("err = %v, want a *DataError naming call user, upstream users, ref user.team", err)
			case !errors.Is(err, ErrBadData) || errors.As(err, &ie):
				t.Errorf("err = %v, want ErrBadData and no *InputError: the client is not at fault", err)
			case !strings.Contains(err.Error(), tt.wantMsg) || !strings.Contains(err.Error(), `call "user"`):
				t.Errorf("err = %q, want it to say %q and name call \"user\"", err, tt.wantMsg)
			}
			if n := rec.total("teams"); n != 0 {
				t.Errorf("teams called %d times, want 0", n)
			}
		})
	}
}

// TestConstantQueryBuiltOnce: a call whose query references nothing gets
// the one url.Values built at compile time on every request (nothing
// writes to it), with its encoding, so that no try encodes it again; a
// query with a reference is rendered per request, and left to the client
// to encode.
func TestConstantQueryBuiltOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]url.Values{}
	encoded := map[string][]string{}
	record := func(name string) upstream.Fetch {
		return func(_ context.Context, req *upstream.Request) (*upstream.Response, error) {
			mu.Lock()
			seen[name] = append(seen[name], req.Query)
			encoded[name] = append(encoded[name], req.EncodedQuery)
			mu.Unlock()
			return &upstream.Response{Status: 200, Body: []byte(`{}`)}, nil
		}
	}
	p := mustCompile(t, []CallConfig{
		{Name: "constant", Upstream: "a", Path: "/a", Query: map[string]string{"limit": "5", "unread": "true"}},
		{Name: "rendered", Upstream: "b", Path: "/b", Query: map[string]string{"limit": "{id}", "x": "1"}},
	}, []string{"id"}, map[string]upstream.Fetch{"a": record("constant"), "b": record("rendered")})
	for _, id := range []string{"3", "4"} {
		if _, err := p.Execute(context.Background(), map[string]string{"id": id}); err != nil {
			t.Fatal(err)
		}
	}
	c, r := seen["constant"], seen["rendered"]
	if len(c) != 2 || len(r) != 2 {
		t.Fatalf("requests: %d constant, %d rendered", len(c), len(r))
	}
	if c[0].Encode() != "limit=5&unread=true" || reflect.ValueOf(c[0]).Pointer() != reflect.ValueOf(c[1]).Pointer() {
		t.Errorf("constant query %v then %v: want limit=5&unread=true, the same map both times", c[0], c[1])
	}
	if r[0].Encode() != "limit=3&x=1" || r[1].Encode() != "limit=4&x=1" {
		t.Errorf("rendered queries %q, %q", r[0].Encode(), r[1].Encode())
	}
	if e := encoded["constant"]; e[0] != "limit=5&unread=true" || e[1] != e[0] {
		t.Errorf("constant query encoded %q, want limit=5&unread=true both times", e)
	}
	if e := encoded["rendered"]; e[0] != "" || e[1] != "" {
		t.Errorf("rendered query encoded %q, want it left to the client", e)
	}
}
