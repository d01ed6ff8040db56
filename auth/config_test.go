package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := Config{Issuer: testIssuer, Audiences: []string{testAudience}, JWKSURL: "https://idp.test/jwks"}
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want []string // prefixes of the joined errors, in order
	}{
		{"no issuer", func(c *Config) { c.Issuer = " " }, []string{"issuer: is required"}},
		{"no audiences", func(c *Config) { c.Audiences = nil }, []string{"audiences: at least one"}},
		{"empty audience", func(c *Config) { c.Audiences = []string{"a", ""} }, []string{"audiences[1]: must not be empty"}},
		{"none", func(c *Config) { c.Algorithms = []string{"RS256", "none"} }, []string{`algorithms[1]: "none"`}},
		{"HS256", func(c *Config) { c.Algorithms = []string{"HS256"} }, []string{"algorithms[0]: HS256 is not supported"}},
		{"unknown alg", func(c *Config) { c.Algorithms = []string{"rs256"} }, []string{`algorithms[0]: unknown algorithm "rs256"`}},
		{"negative skew", func(c *Config) { c.ClockSkew = -time.Second }, []string{"clock_skew: must not be negative"}},
		{"huge skew", func(c *Config) { c.ClockSkew = time.Hour }, []string{"clock_skew: must be at most 5m0s"}},
		{"no key source", func(c *Config) { c.JWKSURL = "" }, []string{"jwks_url: one of jwks_url and jwks_file is required"}},
		{"both key sources", func(c *Config) { c.JWKSFile = "/etc/jwks.json" }, []string{"jwks_file: must not be set together"}},
		{"relative URL", func(c *Config) { c.JWKSURL = "/jwks" }, []string{"jwks_url: must be an absolute http or https URL"}},
		{"ftp URL", func(c *Config) { c.JWKSURL = "ftp://idp/jwks" }, []string{"jwks_url: must be an absolute"}},
		{"URL with fragment", func(c *Config) { c.JWKSURL = "https://idp/jwks#x" }, []string{"jwks_url: must be an absolute"}},
		{"tiny refresh", func(c *Config) { c.RefreshInterval = time.Millisecond }, []string{"refresh_interval: must be at least 1s"}},
		{"tiny refetch", func(c *Config) { c.MinRefetchInterval = time.Millisecond }, []string{"min_refetch_interval: must be at least 100ms"}},
		{"negative timeout", func(c *Config) { c.FetchTimeout = -1 }, []string{"fetch_timeout: must not be negative"}},
		{"long timeout", func(c *Config) { c.FetchTimeout = time.Hour }, []string{"fetch_timeout: must be at most 1m0s"}},
		{"bad scope", func(c *Config) { c.Scopes = []string{"ok", "two words", ""} }, []string{"scopes[1]:", "scopes[2]:"}},
		{"bad claim path", func(c *Config) { c.RequiredClaims = map[string]string{"a..b": "x", "ok": "y", ".a": "z"} },
			[]string{`required_claims: ".a"`, `required_claims: "a..b"`}},
		{"everything at once", func(c *Config) { *c = Config{ClockSkew: -1} },
			[]string{"issuer:", "audiences:", "clock_skew:", "jwks_url:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			c.Audiences = slices.Clone(valid.Audiences)
			tc.edit(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			errs := err.(interface{ Unwrap() []error }).Unwrap()
			if len(errs) != len(tc.want) {
				t.Fatalf("errors = %q, want %d", err, len(tc.want))
			}
			for i, e := range errs {
				if !strings.HasPrefix(e.Error(), tc.want[i]) {
					t.Fatalf("error %d = %q, want prefix %q", i, e, tc.want[i])
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if !slices.Equal(c.Algorithms, []string{"RS256", "ES256", "EdDSA"}) || c.ClockSkew != 30*time.Second ||
		c.RefreshInterval != 5*time.Minute || c.MinRefetchInterval != 10*time.Second || c.FetchTimeout != 5*time.Second {
		t.Fatalf("defaults = %+v", c)
	}
	set := Config{Algorithms: []string{"PS256"}, ClockSkew: time.Second, RefreshInterval: time.Hour,
		MinRefetchInterval: time.Minute, FetchTimeout: time.Second}
	if got := set.WithDefaults(); !slices.Equal(got.Algorithms, set.Algorithms) || got.ClockSkew != set.ClockSkew ||
		got.RefreshInterval != set.RefreshInterval || got.MinRefetchInterval != set.MinRefetchInterval || got.FetchTimeout != set.FetchTimeout {
		t.Fatalf("WithDefaults changed set fields: %+v", got)
	}
	if errors.Is(Config{}.Validate(), nil) {
		t.Fatal("the zero Config is valid")
	}
}
