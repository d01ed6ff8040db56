package e2e

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestComposeGatewayHealthcheck pins the behaviour the compose file and the
// image's HEALTHCHECK rely on (distroless has no curl):
//
//	gateway healthcheck [-admin ADDR]
//
// GETs http://ADDR/readyz, ADDR being -admin, else $BRAID_ADMIN_LISTEN,
// else gateway.yaml's default 127.0.0.1:9090; an unspecified host (":9090",
// "0.0.0.0:9090", "[::]:9090") means 127.0.0.1. It exits 0 on a 200, and 1
// otherwise (another status, no answer within 2s, nothing listening),
// saying why on stderr. It reads no configuration file.
func TestComposeGatewayHealthcheck(t *testing.T) {
	u, err := url.Parse(stack.adminURL)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(u.Host)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead.Close()
	draining := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		http.Error(w, "draining", http.StatusServiceUnavailable)
	}))
	defer draining.Close()
	// hung answers 200 after 10s: a healthcheck without its 2s timeout
	// would take that for ready.
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer hung.Close()

	run := func(env string, args ...string) (int, string) {
		cmd := exec.Command(stack.gatewayBin, append([]string{"healthcheck"}, args...)...)
		cmd.Env = append(cmd.Environ(), "BRAID_ADMIN_LISTEN="+env)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("gateway healthcheck: %v", err)
		}
		return cmd.ProcessState.ExitCode(), stderr.String()
	}

	for _, tc := range []struct {
		name string
		env  string
		args []string
		want int
	}{
		{"ready, from the environment", "127.0.0.1:" + port, nil, 0},
		{"all interfaces means loopback", "0.0.0.0:" + port, nil, 0},
		{"no host means loopback", ":" + port, nil, 0},
		{"-admin wins over the environment", dead.Addr().String(), []string{"-admin", "127.0.0.1:" + port}, 0},
		{"nothing listening", dead.Addr().String(), nil, 1},
		{"not ready (503)", strings.TrimPrefix(draining.URL, "http://"), nil, 1},
		{"no answer", strings.TrimPrefix(hung.URL, "http://"), nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := run(tc.env, tc.args...)
			if code != tc.want {
				t.Errorf("BRAID_ADMIN_LISTEN=%s gateway healthcheck %v: exit %d, want %d\n%s", tc.env, tc.args, code, tc.want, stderr)
			}
			if tc.want != 0 && strings.TrimSpace(stderr) == "" {
				t.Errorf("exit %d without a word on stderr", code)
			}
		})
	}
}
