package observability

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config configures traces, metrics and access logs; the observability
// section of gateway.yaml. Zero values mean the defaults stated per field.
type Config struct {
	// ServiceName names the process in traces (resource service.name).
	// Default $OTEL_SERVICE_NAME, else the binary's name for itself.
	ServiceName string `yaml:"service_name"`
	// Tracing configures OpenTelemetry traces; off unless an endpoint is
	// set.
	Tracing TracingConfig `yaml:"tracing"`
	// Metrics configures the Prometheus metrics on the admin listener.
	Metrics MetricsConfig `yaml:"metrics"`
	// AccessLog configures the one line logged per request.
	AccessLog AccessLogConfig `yaml:"access_log"`
	// ServerTiming configures the Server-Timing response header.
	ServerTiming ServerTimingConfig `yaml:"server_timing"`
}

// TracingConfig configures the OTLP trace export.
type TracingConfig struct {
	// Endpoint is the OTLP/HTTP base URL, e.g. http://jaeger:4318 (traces
	// go to /v1/traces under it). Default
	// $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (taken as the full traces URL) or
	// $OTEL_EXPORTER_OTLP_ENDPOINT; with neither, tracing is off.
	Endpoint string `yaml:"endpoint"`
	// Sampler is one of always_on, always_off, traceidratio,
	// parentbased_always_on, parentbased_always_off and
	// parentbased_traceidratio. Default $OTEL_TRACES_SAMPLER, else
	// parentbased_always_on: an incoming sampled traceparent is followed.
	Sampler string `yaml:"sampler"`
	// SamplerArg is the ratio of the traceidratio samplers, from 0 to 1.
	// Default $OTEL_TRACES_SAMPLER_ARG, else 1.
	SamplerArg string `yaml:"sampler_arg"`

	tracesURL bool // Endpoint came from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: it is the full URL
}

// MetricsConfig configures the Prometheus metrics.
type MetricsConfig struct {
	// Disabled turns metrics (and /metrics, /stats) off. Default false.
	Disabled bool `yaml:"disabled"`
}

// AccessLogConfig configures the access log.
type AccessLogConfig struct {
	// Disabled turns the access log off. Default false.
	Disabled bool `yaml:"disabled"`
	// SampleRate is the fraction of successful (status < 400), fast
	// requests logged, from 0 to 1; errors and requests slower than
	// SlowThreshold are always logged. Default 1: every request.
	SampleRate *float64 `yaml:"sample_rate"`
	// SlowThreshold: requests at least this slow are always logged.
	// Default 1s.
	SlowThreshold time.Duration `yaml:"slow_threshold"`
}

// ServerTimingConfig configures the Server-Timing header.
type ServerTimingConfig struct {
	// Disabled leaves the header out, for public edges that should not
	// reveal their upstreams' timings. Default false.
	Disabled bool `yaml:"disabled"`
}

// samplers are the accepted values of TracingConfig.Sampler.
var samplers = []string{"always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}

// ApplyEnv fills the fields left empty from the standard OpenTelemetry
// environment variables, read through lookup (os.LookupEnv in main).
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	if c.ServiceName == "" {
		c.ServiceName = get("OTEL_SERVICE_NAME")
	}
	t := &c.Tracing
	if t.Endpoint == "" {
		if v := get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
			t.Endpoint, t.tracesURL = v, true
		} else {
			t.Endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT")
		}
	}
	if t.Sampler == "" {
		t.Sampler = get("OTEL_TRACES_SAMPLER")
	}
	if t.SamplerArg == "" {
		t.SamplerArg = get("OTEL_TRACES_SAMPLER_ARG")
	}
}

// Validate reports every bad field, named as in YAML under
// "observability.".
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("observability.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if e := c.Tracing.Endpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("tracing.endpoint", "must be an http or https URL such as http://jaeger:4318, got %q", e)
		}
	}
	if s := c.Tracing.Sampler; s != "" && !slices.Contains(samplers, s) {
		bad("tracing.sampler", "%q: want one of %s", s, strings.Join(samplers, ", "))
	}
	if a := c.Tracing.SamplerArg; a != "" {
		if f, err := strconv.ParseFloat(a, 64); err != nil || f < 0 || f > 1 || math.IsNaN(f) {
			bad("tracing.sampler_arg", "must be a ratio from 0 to 1, got %q", a)
		}
	}
	if r := c.AccessLog.SampleRate; r != nil && (*r < 0 || *r > 1 || math.IsNaN(*r)) {
		bad("access_log.sample_rate", "must be from 0 to 1, got %v", *r)
	}
	if c.AccessLog.SlowThreshold < 0 {
		bad("access_log.slow_threshold", "must not be negative, got %s", c.AccessLog.SlowThreshold)
	}
	return errors.Join(errs...)
}
