package cache

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // each a line of the error, in order; none: valid
	}{
		{"zero", Config{}, nil},
		{"full", Config{Redis: RedisConfig{URL: "redis://localhost:6379/2", Timeout: time.Second, Prefix: "x:"},
			L1: L1Config{MaxBytes: 1 << 30}, RefreshTimeout: time.Second}, nil},
		{"everything wrong", Config{Redis: RedisConfig{URL: "http://localhost", Timeout: -1},
			L1: L1Config{MaxBytes: -5}, RefreshTimeout: -time.Second},
			[]string{"cache.redis.url: ", "cache.redis.timeout: must not be negative", "cache.l1.max_bytes: must not be negative, got -5",
				"cache.refresh_timeout: must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate: nil, want errors")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("Validate: %q, want %d errors", lines, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("error %d = %q, want it to start with %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(context.Background(), Config{L1: L1Config{MaxBytes: -1}}, Options{}); err == nil {
		t.Fatal("New accepted a negative max_bytes")
	}
}

func TestDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	want := Config{Redis: RedisConfig{Timeout: 50 * time.Millisecond, Prefix: "braid:"}, L1: L1Config{MaxBytes: 64 << 20},
		RefreshTimeout: 10 * time.Second}
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
}

func TestPolicyValidate(t *testing.T) {
	if errs := (Policy{TTL: time.Second}).Validate(); errs != nil {
		t.Errorf("valid policy: %v", errs)
	}
	errs := Policy{TTL: 0, StaleWhileRevalidate: -1, StaleIfError: -1, NegativeTTL: -1}.Validate()
	want := []string{"ttl: must be positive", "stale_while_revalidate: must not be negative",
		"stale_if_error: must not be negative", "negative_ttl: must not be negative"}
	if len(errs) != len(want) {
		t.Fatalf("Validate = %v, want %d errors", errs, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d = %q, want %q...", i, errs[i], w)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
	}{
		{"67108864", 64 << 20},
		{"64MiB", 64 << 20},
		{"64 MiB", 64 << 20},
		{"64mib", 64 << 20},
		{"512KiB", 512 << 10},
		{"1GiB", 1 << 30},
		{"1.5GiB", 3 << 29},
		{"100MB", 100_000_000},
		{"2kb", 2000},
		{"10B", 10},
		{"0", 0},
		{"-1", -1}, // parsed; Validate rejects it
		{"9223372036854775807", 1<<63 - 1},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "MiB", "64XB", "6 4MiB", "1e3", "lots", "9999999TiB", "NaN"} {
		if got, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", bad, got)
		}
	}
}

func TestByteSizeYAML(t *testing.T) {
	var cfg struct {
		Cache Config `yaml:"cache"`
	}
	src := "cache:\n  redis:\n    url: redis://r:6379/0\n    timeout: 20ms\n  l1:\n    max_bytes: 512KiB\n"
	if err := yaml.Unmarshal([]byte(src), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Cache.L1.MaxBytes != 512<<10 || cfg.Cache.Redis.Timeout != 20*time.Millisecond {
		t.Errorf("decoded %+v", cfg.Cache)
	}
	if err := yaml.Unmarshal([]byte("cache:\n  l1:\n    max_bytes: 67108864\n"), &cfg); err != nil || cfg.Cache.L1.MaxBytes != 64<<20 {
		t.Errorf("integer max_bytes: %d, %v", cfg.Cache.L1.MaxBytes, err)
	}

	err := yaml.Unmarshal([]byte("cache:\n  l1:\n    max_bytes: 64XB\n"), &cfg)
	var te *yaml.TypeError
	if !errors.As(err, &te) || len(te.Errors) != 1 || !strings.HasPrefix(te.Errors[0], "line 3: `64XB` is not a byte size") {
		t.Errorf("bad max_bytes: %v, want a *yaml.TypeError on line 3 quoting the value", err)
	}
	if err := yaml.Unmarshal([]byte("cache:\n  l1:\n    max_bytes: [1]\n"), &cfg); err == nil {
		t.Error("a list decoded as a byte size")
	}
}

func TestByteSizeText(t *testing.T) {
	var s ByteSize
	if err := s.UnmarshalText([]byte("1GiB")); err != nil || s != 1<<30 {
		t.Errorf("UnmarshalText = %d, %v", s, err)
	}
	if err := s.UnmarshalText([]byte("x")); err == nil {
		t.Error("UnmarshalText accepted x")
	}
	for _, tt := range []struct {
		s    ByteSize
		want string
	}{{64 << 20, "64MiB"}, {1 << 30, "1GiB"}, {1536, "1536B"}, {1000, "1000B"}, {0, "0B"}} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("String(%d) = %q, want %q", int64(tt.s), got, tt.want)
		}
	}
}

func TestStatus(t *testing.T) {
	tests := []struct {
		s            Status
		str, cacheSt string
	}{
		{Miss, "miss", "fwd=miss"},
		{HitL1, "hit_l1", "hit; detail=l1"},
		{HitL2, "hit_l2", "hit; detail=l2"},
		{Stale, "stale", "fwd=stale"},
		{NegativeHit, "negative_hit", "hit; detail=negative"},
		{Status(42), "Status(42)", "fwd=miss"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.str {
			t.Errorf("String() = %q, want %q", got, tt.str)
		}
		if got := tt.s.CacheStatus(); got != tt.cacheSt {
			t.Errorf("%s.CacheStatus() = %q, want %q", tt.s, got, tt.cacheSt)
		}
	}
}
