package upstream

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		wantFields []string // each must appear as "field:" in the error; none means valid
	}{
		{name: "minimal", cfg: Config{URL: "http://users:8080"}},
		{name: "https with path prefix", cfg: Config{URL: "https://users.internal/api/v1/"}},
		{name: "everything set", cfg: Config{
			URL: "http://10.0.0.1:9000", MaxIdleConns: 1, MaxConns: 2, IdleTimeout: time.Second,
			DialTimeout: time.Second, TLSHandshakeTimeout: time.Second, ResponseHeaderTimeout: time.Second,
			MaxResponseBytes: 1, H2C: true,
		}},
		{name: "missing url", cfg: Config{}, wantFields: []string{"url"}},
		{name: "ftp url", cfg: Config{URL: "ftp://x"}, wantFields: []string{"url"}},
		{name: "relative url", cfg: Config{URL: "/users"}, wantFields: []string{"url"}},
		{name: "host without scheme", cfg: Config{URL: "users:8080"}, wantFields: []string{"url"}},
		{name: "no host", cfg: Config{URL: "http:///users"}, wantFields: []string{"url"}},
		{name: "unparsable", cfg: Config{URL: "http://[::1"}, wantFields: []string{"url"}},
		{name: "query", cfg: Config{URL: "http://users/?debug=1"}, wantFields: []string{"url"}},
		{name: "empty query", cfg: Config{URL: "http://users/?"}, wantFields: []string{"url"}},
		{name: "fragment", cfg: Config{URL: "http://users/#top"}, wantFields: []string{"url"}},
		{name: "negative max_idle_conns", cfg: Config{URL: "http://u", MaxIdleConns: -1}, wantFields: []string{"max_idle_conns"}},
		{name: "negative max_conns", cfg: Config{URL: "http://u", MaxConns: -1}, wantFields: []string{"max_conns"}},
		{name: "negative idle_timeout", cfg: Config{URL: "http://u", IdleTimeout: -1}, wantFields: []string{"idle_timeout"}},
		{name: "negative dial_timeout", cfg: Config{URL: "http://u", DialTimeout: -1}, wantFields: []string{"dial_timeout"}},
		{name: "negative tls_handshake_timeout", cfg: Config{URL: "http://u", TLSHandshakeTimeout: -1}, wantFields: []string{"tls_handshake_timeout"}},
		{name: "negative response_header_timeout", cfg: Config{URL: "http://u", ResponseHeaderTimeout: -1}, wantFields: []string{"response_header_timeout"}},
		{name: "negative max_response_bytes", cfg: Config{URL: "http://u", MaxResponseBytes: -1}, wantFields: []string{"max_response_bytes"}},
		{name: "h2c over https", cfg: Config{URL: "https://u", H2C: true}, wantFields: []string{"h2c"}},
		{name: "transport auto", cfg: Config{URL: "https://u", Transport: "auto"}},
		{name: "transport net/http with h2c", cfg: Config{URL: "http://u", Transport: "net/http", H2C: true}},
		{name: "transport lean", cfg: Config{URL: "http://u", Transport: "lean"}},
		{name: "unknown transport", cfg: Config{URL: "http://u", Transport: "fasthttp"}, wantFields: []string{"transport"}},
		{name: "lean over https", cfg: Config{URL: "https://u", Transport: "lean"}, wantFields: []string{"transport"}},
		{name: "lean over HTTPS", cfg: Config{URL: "HTTPS://u", Transport: "lean"}, wantFields: []string{"transport"}},
		{name: "lean with h2c", cfg: Config{URL: "http://u", Transport: "lean", H2C: true}, wantFields: []string{"transport"}},
		{name: "several at once", cfg: Config{MaxConns: -5, DialTimeout: -time.Second},
			wantFields: []string{"url", "max_conns", "dial_timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.wantFields) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error naming %v", tt.wantFields)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.wantFields) {
				t.Errorf("Validate() reported %d problems, want %d: %v", len(lines), len(tt.wantFields), err)
			}
			for _, f := range tt.wantFields {
				if !strings.Contains(err.Error(), f+": ") {
					t.Errorf("Validate() = %q, want it to name field %q", err, f)
				}
			}
		})
	}
}

func TestConfigValidateQuotesBadURL(t *testing.T) {
	err := Config{URL: "ftp://x"}.Validate()
	want := `url: must be an absolute http or https URL, got "ftp://x"`
	if err == nil || err.Error() != want {
		t.Fatalf("Validate() = %v, want %s", err, want)
	}
}

func TestConfigWithDefaults(t *testing.T) {
	t.Run("zero fields get defaults", func(t *testing.T) {
		got := Config{URL: "http://u"}.withDefaults()
		want := Config{
			URL: "http://u", MaxIdleConns: 64, MaxConns: 256, IdleTimeout: 90 * time.Second,
			DialTimeout: 2 * time.Second, TLSHandshakeTimeout: 3 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second, MaxResponseBytes: 8 << 20, Transport: "auto",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("withDefaults() = %+v, want %+v", got, want)
		}
	})
	t.Run("set fields are kept", func(t *testing.T) {
		cfg := Config{
			URL: "http://u", MaxIdleConns: 1, MaxConns: 2, IdleTimeout: 3, DialTimeout: 4,
			TLSHandshakeTimeout: 5, ResponseHeaderTimeout: 6, MaxResponseBytes: 7, H2C: true, Transport: "net/http",
		}
		if got := cfg.withDefaults(); !reflect.DeepEqual(got, cfg) {
			t.Errorf("withDefaults() = %+v, want unchanged %+v", got, cfg)
		}
	})
}

func TestNewPicksTransport(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "http://u"}, autoPlainHTTP}, // lean outside this package's tests
		{Config{URL: "http://u", Transport: "auto"}, autoPlainHTTP},
		{Config{URL: "https://u"}, "net/http"},
		{Config{URL: "HTTPS://u"}, "net/http"},
		{Config{URL: "http://u", H2C: true}, "net/http"},
		{Config{URL: "http://u", Transport: "lean"}, "lean"},
		{Config{URL: "http://u", Transport: "net/http"}, "net/http"},
	}
	for _, tt := range tests {
		c := newClient(t, tt.cfg)
		got := "net/http"
		if _, ok := c.transport.(*leanTransport); ok {
			got = "lean"
		}
		if got != tt.want || c.rt != c.transport {
			t.Errorf("%+v: transport %s, want %s", tt.cfg, got, tt.want)
		}
	}
}

func TestNewBuildsTunedTransport(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want Config // the values the transport must carry
	}{
		{name: "defaults", cfg: Config{URL: "http://u"}, want: Config{URL: "http://u"}.withDefaults()},
		{name: "custom", cfg: Config{
			URL: "http://u", MaxIdleConns: 3, MaxConns: 7, IdleTimeout: time.Minute, DialTimeout: 5 * time.Second,
			TLSHandshakeTimeout: time.Second, ResponseHeaderTimeout: 4 * time.Second,
		}, want: Config{
			MaxIdleConns: 3, MaxConns: 7, IdleTimeout: time.Minute, DialTimeout: 5 * time.Second,
			TLSHandshakeTimeout: time.Second, ResponseHeaderTimeout: 4 * time.Second,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/net/http", func(t *testing.T) {
			cfg := tt.cfg
			cfg.Transport = "net/http"
			c := newClient(t, cfg)
			tr := c.transport.(*http.Transport)
			if tr == http.DefaultTransport || c.rt != tr {
				t.Fatal("client does not use its own transport")
			}
			if tr.Proxy != nil {
				t.Error("Proxy is set; an edge gateway must not read HTTP_PROXY")
			}
			if tr.DialContext == nil || !tr.ForceAttemptHTTP2 || tr.ExpectContinueTimeout != time.Second {
				t.Errorf("DialContext set %v, ForceAttemptHTTP2 %v, ExpectContinueTimeout %v",
					tr.DialContext != nil, tr.ForceAttemptHTTP2, tr.ExpectContinueTimeout)
			}
			if tr.MaxIdleConns != tt.want.MaxIdleConns || tr.MaxIdleConnsPerHost != tt.want.MaxIdleConns ||
				tr.MaxConnsPerHost != tt.want.MaxConns || tr.IdleConnTimeout != tt.want.IdleTimeout ||
				tr.TLSHandshakeTimeout != tt.want.TLSHandshakeTimeout ||
				tr.ResponseHeaderTimeout != tt.want.ResponseHeaderTimeout || tr.MaxResponseHeaderBytes != maxHeaderBytes {
				t.Errorf("transport = idle %d/%d, conns %d, idle timeout %v, tls %v, headers %v (%d bytes); want %+v",
					tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost, tr.IdleConnTimeout,
					tr.TLSHandshakeTimeout, tr.ResponseHeaderTimeout, tr.MaxResponseHeaderBytes, tt.want)
			}
			if tr.Protocols != nil {
				t.Errorf("Protocols = %v, want nil (HTTP/1 and HTTP/2 via ForceAttemptHTTP2)", tr.Protocols)
			}
		})
		t.Run(tt.name+"/lean", func(t *testing.T) {
			cfg := tt.cfg
			cfg.Transport = "lean"
			c := newClient(t, cfg)
			tr := c.transport.(*leanTransport)
			p := &tr.pool
			if p.addr != "u:80" || p.maxIdle != tt.want.MaxIdleConns || p.maxConns != tt.want.MaxConns ||
				p.idleTimeout != tt.want.IdleTimeout || p.dialer.Timeout != tt.want.DialTimeout ||
				p.dialer.KeepAlive != tcpKeepAlive || tr.headerTimeout != tt.want.ResponseHeaderTimeout {
				t.Errorf("lean transport = addr %s, idle %d, conns %d, idle timeout %v, dial %v/%v, headers %v; want %+v",
					p.addr, p.maxIdle, p.maxConns, p.idleTimeout, p.dialer.Timeout, p.dialer.KeepAlive, tr.headerTimeout, tt.want)
			}
		})
	}
	t.Run("h2c", func(t *testing.T) {
		p := newClient(t, Config{URL: "http://u", H2C: true}).transport.(*http.Transport).Protocols
		if p == nil || !p.UnencryptedHTTP2() || p.HTTP1() {
			t.Errorf("Protocols = %v, want only UnencryptedHTTP2", p)
		}
	})
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name, upstream string
		cfg            Config
		want           string
	}{
		{name: "empty name", upstream: "", cfg: Config{URL: "http://u"}, want: "name"},
		{name: "bad config", upstream: "users", cfg: Config{URL: "http://u", MaxConns: -1}, want: `upstream "users": max_conns: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.upstream, tt.cfg)
			if err == nil || c != nil {
				t.Fatalf("New() = %v, %v; want nil and an error", c, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New() error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}
