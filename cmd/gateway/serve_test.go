package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"testing"
	"time"
)

// TestServeDemoAndShutdown runs the whole gateway in process in -demo mode,
// answers both composite endpoints, then shuts down when its context ends.
// goleak (TestMain) then proves nothing it started outlives it.
func TestServeDemoAndShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	o := &options{config: "../../gateway.yaml", demo: true, listen: "127.0.0.1:0", admin: "127.0.0.1:0"}
	go func() {
		err := serve(ctx, o, slog.New(slog.DiscardHandler), pw)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no banner: %v", <-done)
	}
	m := regexp.MustCompile(`serving on (http://\S+) \(admin (http://[^;]+);.*demo services in process: users http://`).FindStringSubmatch(sc.Text())
	if m == nil {
		t.Fatalf("banner = %q", sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }() // drain the rest of the banner
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	for _, path := range []string{"/api/users/1/dashboard", "/api/users/7/orders-with-products"} {
		resp, err := client.Get(m[1] + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !json.Valid(body) {
			t.Errorf("%s: %d %.200s", path, resp.StatusCode, body)
		}
	}
	resp, err := client.Get(m[2] + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v, want a clean drain", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
}
