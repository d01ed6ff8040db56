package routes

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/braidgw/braid/aggregate"
)

// TestStatusAndBlame: the status, code and the upstream named say who is at
// fault: the client for its parameters (400), the upstream that sent a bad
// value or a broken body (502 invalid_upstream_response). A refused value
// never reaches the network.
func TestStatusAndBlame(t *testing.T) {
	user := func(team string) http.HandlerFunc { return body(`{"id":1,"team":` + team + `}`) }
	cutShort := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, `{"id":1,"team":7}`) // valid JSON, 17 of the promised 100 bytes
	}
	reset := func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":1,")
		_ = buf.Flush()
		_ = conn.(*net.TCPConn).SetLinger(0) // close with a TCP reset
		_ = conn.Close()
	}
	tests := []struct {
		name         string
		path         string // the request's path
		users        http.HandlerFunc
		wantStatus   int
		wantCode     string
		wantMsg      []string // substrings
		wantCall     string
		wantUpstream string
		wantUsers    int64 // calls to the users upstream
		wantTeams    string
	}{
		{name: "traversal from an upstream", users: user(`"../../admin"`), wantStatus: 502, wantCode: "invalid_upstream_response",
			wantMsg:  []string{`call "team" failed: upstream users sent data it cannot use: {user.team} "../../admin" cannot be used as a path segment (in the result of call "user")`},
			wantCall: "team", wantUpstream: "users", wantUsers: 1},
		{name: "backslash traversal from an upstream", users: user(`"..\\..\\admin"`), wantStatus: 502, wantCode: "invalid_upstream_response",
			wantMsg: []string{`upstream users sent data it cannot use`}, wantCall: "team", wantUpstream: "users", wantUsers: 1},
		{name: "null from an upstream", users: user(`null`), wantStatus: 502, wantCode: "invalid_upstream_response",
			wantMsg: []string{`upstream users sent data it cannot use: {user.team} is missing or null`}, wantCall: "team", wantUpstream: "users", wantUsers: 1},
		{name: "object from an upstream", users: user(`{"x":1}`), wantStatus: 502, wantCode: "invalid_upstream_response",
			wantMsg: []string{`upstream users sent data it cannot use: {user.team} cannot be used`}, wantCall: "team", wantUpstream: "users", wantUsers: 1},
		{name: "backslash traversal parameter", path: "/api/users/..%5C..%5Cadmin/team", wantStatus: 400, wantCode: "invalid_parameter",
			wantMsg: []string{`parameter id "..\\..\\admin" cannot be used as a path segment`}},
		{name: "backslash dot segment inside a parameter", path: "/api/users/a%5C..%5Cb/team", wantStatus: 400, wantCode: "invalid_parameter",
			wantMsg: []string{`parameter id`}},
		{name: "backslash without a dot segment is fine", path: "/api/users/a%5Cb/team", users: user(`"a\\b"`), wantStatus: 200,
			wantUsers: 1, wantTeams: "/teams/a%5Cb"},
		{name: "body cut short", users: cutShort, wantStatus: 502, wantCode: "invalid_upstream_response",
			wantMsg: []string{`call "user" failed: upstream users sent a body that was cut short`}, wantCall: "user", wantUpstream: "users", wantUsers: 1},
		{name: "reset mid-body", users: reset, wantStatus: 502, wantCode: "invalid_upstream_response",
			wantMsg: []string{`upstream users sent a body that was cut short`}, wantCall: "user", wantUpstream: "users", wantUsers: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var teamsSaw []string
			hs := map[string]http.HandlerFunc{
				"users": tt.users,
				"teams": func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					teamsSaw = append(teamsSaw, r.URL.EscapedPath())
					mu.Unlock()
					_, _ = io.WriteString(w, `{"name":"t"}`)
				},
			}
			if hs["users"] == nil {
				hs["users"] = user(`7`)
			}
			h, servers := gateway(t, hs, func(rc *RouteConfig) {
				rc.Path = "/api/users/{id}/team"
				rc.Timeout = time.Second
				rc.Params = nil // id is a string
				rc.Calls = []aggregate.CallConfig{
					{Name: "user", Upstream: "users", Path: "/users/{id}"},
					{Name: "team", Upstream: "teams", Path: "/teams/{user.team}"},
				}
			})
			path := tt.path
			if path == "" {
				path = "/api/users/1/team"
			}
			resp, got := do(t, h, httptest.NewRequest("GET", path, nil))
			if n := servers["users"].calls.Load(); n != tt.wantUsers {
				t.Errorf("users called %d times, want %d", n, tt.wantUsers)
			}
			mu.Lock()
			defer mu.Unlock()
			if tt.wantStatus == 200 {
				if resp.StatusCode != 200 || len(teamsSaw) != 1 || teamsSaw[0] != tt.wantTeams {
					t.Errorf("status %d (%s), teams saw %v; want 200 and one call to %s", resp.StatusCode, got, teamsSaw, tt.wantTeams)
				}
				return
			}
			if len(teamsSaw) != 0 {
				t.Errorf("teams saw %v, want no call", teamsSaw)
			}
			for _, m := range tt.wantMsg {
				checkError(t, resp, got, tt.wantStatus, tt.wantCode, m)
			}
			var e apiError
			_ = json.Unmarshal([]byte(got), &e)
			if e.Call != tt.wantCall || e.Upstream != tt.wantUpstream {
				t.Errorf("error names call %q, upstream %q; want call %q, upstream %q", e.Call, e.Upstream, tt.wantCall, tt.wantUpstream)
			}
			if strings.Contains(got, "could not be reached") {
				t.Errorf("error %s says the upstream could not be reached", got)
			}
		})
	}
}
