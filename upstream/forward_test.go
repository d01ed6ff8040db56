package upstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/braidgw/braid/observability"
)

// TestForwardHeaders: a call forwards exactly the client headers on its
// allow-list (the upstream's own list when it has one, else the call's),
// with every value, to every try; hop-by-hop and unlisted headers never
// arrive, and without a list nothing does.
func TestForwardHeaders(t *testing.T) {
	var mu sync.Mutex
	var got []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	client := http.Header{
		"Authorization":   {"Bearer abc"},
		"Accept-Language": {"fr", "en;q=0.5"},
		"Cookie":          {"session=secret"},
		"Connection":      {"X-Private"},
		"X-Private":       {"hop"},
	}
	tests := []struct {
		name     string
		upstream []string // the upstream's forward_headers; nil unset
		call     []string // the route's list
		want     []string // header names that must arrive with the client's values
	}{
		{"route list", nil, []string{"authorization", "Accept-Language"}, []string{"Authorization", "Accept-Language"}},
		{"nothing by default", nil, nil, nil},
		{"upstream list replaces the route's", []string{"Cookie"}, []string{"Authorization"}, []string{"Cookie"}},
		{"upstream forwards nothing", []string{}, []string{"Authorization"}, nil},
		{"absent header is not invented", nil, []string{"X-Absent"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := NewSet(map[string]Config{"svc": {URL: srv.URL, ForwardHeaders: tt.upstream}}, SetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer set.Close()
			fetch, err := set.Stack(Call{Route: "GET /x", Name: "c", Upstream: "svc", Forward: tt.call})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			got = nil
			mu.Unlock()
			ctx := WithClientHeader(context.Background(), client)
			if _, err := fetch(ctx, &Request{Path: "/a"}); err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1", len(got))
			}
			h := got[0]
			for _, name := range []string{"Authorization", "Accept-Language", "Cookie", "X-Private", "X-Absent"} {
				want := slices.Contains(tt.want, name)
				if vs := h.Values(name); want != (len(vs) > 0) || want && !slices.Equal(vs, client[name]) {
					t.Errorf("%s = %q, want forwarded: %v", name, vs, want)
				}
			}
			if c := h.Get("Connection"); strings.Contains(c, "X-Private") {
				t.Errorf("Connection = %q: a hop-by-hop header was forwarded", c)
			}
		})
	}
	if len(client["Accept-Language"]) != 2 || client.Get("Authorization") != "Bearer abc" {
		t.Errorf("the client's headers were modified: %v", client)
	}
}

// TestCheckForwardHeaders: an allow-list may name end-to-end headers
// only; each refused entry is named with why.
func TestCheckForwardHeaders(t *testing.T) {
	if errs := CheckForwardHeaders("f", []string{"Authorization", "accept-language", "X-Tenant"}); len(errs) != 0 {
		t.Errorf("valid list refused: %v", errs)
	}
	for _, tt := range []struct {
		name, want string
	}{
		{"connection", "f[0]: Connection cannot be forwarded (hop-by-hop)"},
		{"Transfer-Encoding", "f[0]: Transfer-Encoding cannot be forwarded (hop-by-hop)"},
		{"Host", "f[0]: Host cannot be forwarded"},
		{"braid-budget-ms", "f[0]: Braid-Budget-Ms cannot be forwarded (Braid's own"},
		{"traceparent", "f[0]: Traceparent cannot be forwarded (Braid's own"},
		{"X-Request-Id", "f[0]: X-Request-Id cannot be forwarded (always sent"},
		{"bad name", `f[0]: "bad name" is not a header name`},
		{"", `f[0]: "" is not a header name`},
	} {
		errs := CheckForwardHeaders("f", []string{tt.name})
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want) {
			t.Errorf("%q: %v, want %q", tt.name, errs, tt.want)
		}
	}
	errs := CheckForwardHeaders("f", []string{"Authorization", "authorization"})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "f[1]: Authorization is listed twice") {
		t.Errorf("duplicate: %v", errs)
	}
	err := Config{URL: "http://x", ForwardHeaders: []string{"Upgrade"}}.Validate()
	if err == nil || !strings.Contains(err.Error(), "forward_headers[0]: Upgrade cannot be forwarded") {
		t.Errorf("Config.Validate = %v, want the forward_headers entry named", err)
	}
}

// TestRequestIDOnEveryCall: the request id in the context goes on every
// call, with or without an allow-list, and a client header cannot replace
// it.
func TestRequestIDOnEveryCall(t *testing.T) {
	ids := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids <- strings.Join(r.Header.Values("X-Request-Id"), "|")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	set, err := NewSet(map[string]Config{"svc": {URL: srv.URL}}, SetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	for _, forward := range [][]string{nil, {"Authorization"}} {
		fetch, err := set.Stack(Call{Route: "GET /x", Name: "c", Upstream: "svc", Forward: forward})
		if err != nil {
			t.Fatal(err)
		}
		ctx := WithClientHeader(observability.WithRequestID(context.Background(), "req-42"), http.Header{"X-Request-Id": {"client-chosen"}})
		if _, err := fetch(ctx, &Request{Path: "/a"}); err != nil {
			t.Fatal(err)
		}
		if got := <-ids; got != "req-42" {
			t.Errorf("forward %v: X-Request-Id = %q, want req-42", forward, got)
		}
	}
}
