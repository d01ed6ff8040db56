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

	"golang.org/x/net/http/httpguts"
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
	// The exporter's settings from the environment, as found (name and
	// value; empty name when unset): parsed by exportSettings, reported
	// by Validate.
	headersEnv, compressionEnv, timeoutEnv [2]string
	// The batch span processor's variables (OTEL_BSP_*) that are set.
	batchEnv map[string]string
}

// The batch span processor's variables and the setting each sets.
var batchEnvVars = []struct {
	name string
	ms   bool // milliseconds, else a count
	set  func(*batchOptions, int64)
}{
	{"OTEL_BSP_SCHEDULE_DELAY", true, func(o *batchOptions, v int64) { o.delay = time.Duration(v) * time.Millisecond }},
	{"OTEL_BSP_EXPORT_TIMEOUT", true, func(o *batchOptions, v int64) { o.timeout = time.Duration(v) * time.Millisecond }},
	{"OTEL_BSP_MAX_QUEUE_SIZE", false, func(o *batchOptions, v int64) { o.maxQueue = int(v) }},
	{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", false, func(o *batchOptions, v int64) { o.batchSize = int(v) }},
}

// batchOptions parses the OTEL_BSP_* variables over the defaults; a batch
// larger than the queue is cut to the queue's size, as the SDKs do. The
// errors name the variable.
func (t TracingConfig) batchOptions() (batchOptions, []error) {
	o := defaultBatchOptions
	var errs []error
	for _, v := range batchEnvVars {
		raw, ok := t.batchEnv[v.name]
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(raw, 10, 64)
		limit, unit := int64(1_000_000), "a count from 1 to 1000000"
		if v.ms {
			limit, unit = int64(time.Hour/time.Millisecond), "milliseconds from 1 to 3600000"
		}
		if err != nil || n <= 0 || n > limit {
			errs = append(errs, fmt.Errorf("%s: want %s, got %q", v.name, unit, raw))
			continue
		}
		v.set(&o, n)
	}
	o.batchSize = min(o.batchSize, o.maxQueue)
	return o, errs
}

// exportSettings are the OTLP exporter's settings besides its URL.
type exportSettings struct {
	headers map[string]string
	gzip    bool
	timeout time.Duration // per attempt
}

// defaultExportTimeout is the OTLP specification's default of
// OTEL_EXPORTER_OTLP_TIMEOUT.
const defaultExportTimeout = 10 * time.Second

// exportSettings parses the exporter's environment variables, as the
// OpenTelemetry SDKs read them: OTEL_EXPORTER_OTLP_[TRACES_]HEADERS
// (key=value pairs separated by commas, values percent-decoded),
// …_COMPRESSION (gzip or none), …_TIMEOUT (milliseconds). The errors
// name the variable.
func (t TracingConfig) exportSettings() (exportSettings, []error) {
	s := exportSettings{timeout: defaultExportTimeout}
	var errs []error
	if name, v := t.headersEnv[0], t.headersEnv[1]; name != "" {
		s.headers = map[string]string{}
		for pair := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(pair) == "" {
				continue
			}
			k, val, ok := strings.Cut(pair, "=")
			k = strings.TrimSpace(k)
			dec, err := url.PathUnescape(val)
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("%s: %q is not key=value", name, pair))
			case !httpguts.ValidHeaderFieldName(k):
				errs = append(errs, fmt.Errorf("%s: %q is not a header name", name, k))
			case err != nil:
				errs = append(errs, fmt.Errorf("%s: the value of %s: %v", name, k, err))
			case !httpguts.ValidHeaderFieldValue(strings.TrimSpace(dec)):
				errs = append(errs, fmt.Errorf("%s: the value of %s holds control characters", name, k))
			default:
				s.headers[k] = strings.TrimSpace(dec)
			}
		}
	}
	if name, v := t.compressionEnv[0], t.compressionEnv[1]; name != "" {
		switch v {
		case "gzip":
			s.gzip = true
		case "none", "":
		default:
			errs = append(errs, fmt.Errorf("%s: %q: want gzip or none", name, v))
		}
	}
	if name, v := t.timeoutEnv[0], t.timeoutEnv[1]; name != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 || ms > int64(time.Hour/time.Millisecond) {
			errs = append(errs, fmt.Errorf("%s: want milliseconds from 1 to 3600000, got %q", name, v))
		} else {
			s.timeout = time.Duration(ms) * time.Millisecond
		}
	}
	return s, errs
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
	// The signal-specific variable replaces the general one, as in the
	// OpenTelemetry SDKs. Empty counts as unset (compose files write
	// ${VAR:-}).
	pick := func(dst *[2]string, suffix string) {
		for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_" + suffix, "OTEL_EXPORTER_OTLP_" + suffix} {
			if v := get(name); v != "" {
				*dst = [2]string{name, v}
				return
			}
		}
	}
	pick(&t.headersEnv, "HEADERS")
	pick(&t.compressionEnv, "COMPRESSION")
	pick(&t.timeoutEnv, "TIMEOUT")
	for _, v := range batchEnvVars {
		if raw := get(v.name); raw != "" {
			if t.batchEnv == nil {
				t.batchEnv = map[string]string{}
			}
			t.batchEnv[v.name] = raw
		}
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
	if c.Tracing.Endpoint != "" {
		_, exportErrs := c.Tracing.exportSettings()
		_, batchErrs := c.Tracing.batchOptions()
		errs = append(append(errs, exportErrs...), batchErrs...)
	}
	if r := c.AccessLog.SampleRate; r != nil && (*r < 0 || *r > 1 || math.IsNaN(*r)) {
		bad("access_log.sample_rate", "must be from 0 to 1, got %v", *r)
	}
	if c.AccessLog.SlowThreshold < 0 {
		bad("access_log.slow_threshold", "must not be negative, got %s", c.AccessLog.SlowThreshold)
	}
	return errors.Join(errs...)
}
