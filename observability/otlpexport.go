package observability

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Retry schedule of an export the collector refused for now (429, 502,
// 503, 504) or that could not connect: the OTLP specification's
// exponential back-off, with opentelemetry-go's exporter's numbers.
const (
	exportFirstRetry = 5 * time.Second
	exportMaxRetry   = 30 * time.Second
	exportGiveUp     = time.Minute
	// exportKeepBuffer: an encoding buffer grown beyond this by one large
	// batch is not kept for the next.
	exportKeepBuffer = 4 << 20
	// exportMaxAnswer caps how much of a collector's answer is read.
	exportMaxAnswer = 64 << 10
)

// otlpExporter sends spans to an OTLP/HTTP collector as protobuf, encoded
// by appendTraceRequest into a buffer reused from one export to the next.
// The batch span processor calls ExportSpans from one goroutine; the mutex
// keeps a concurrent ForceFlush safe.
type otlpExporter struct {
	url     string
	client  *http.Client
	header  http.Header // Content-Type, User-Agent, the configured headers
	gzip    bool
	timeout time.Duration // per attempt
	// wait sleeps d or until ctx ends; tests replace it.
	wait func(ctx context.Context, d time.Duration) error

	mu      sync.Mutex
	buf     []byte
	zbuf    bytes.Buffer
	zw      *gzip.Writer
	stopped bool
}

func newOTLPExporter(url string, client *http.Client, c exportSettings, version string) *otlpExporter {
	h := make(http.Header, len(c.headers)+3)
	for k, v := range c.headers {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/x-protobuf")
	h.Set("User-Agent", "braid/"+version+" (OTLP/HTTP protobuf)")
	if c.gzip {
		h.Set("Content-Encoding", "gzip")
	}
	return &otlpExporter{url: url, client: client, header: h, gzip: c.gzip, timeout: c.timeout, wait: sleepCtx}
}

// ExportSpans sends spans in one request, retrying while the collector
// says to retry later and ctx and the give-up time allow.
func (e *otlpExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return errors.New("otlp exporter: shut down")
	}
	e.buf = appendTraceRequest(e.buf[:0], spans)
	defer func() {
		if cap(e.buf) > exportKeepBuffer {
			e.buf = nil
		}
	}()
	body := e.buf
	if e.gzip {
		var err error
		if body, err = e.compress(body); err != nil {
			return err
		}
	}
	start := time.Now()
	for attempt := 0; ; attempt++ {
		retryAfter, err := e.post(ctx, body)
		if err == nil || retryAfter < 0 {
			return err
		}
		d := retryAfter
		if d == 0 {
			d = backoff(attempt)
		}
		if time.Since(start)+d > exportGiveUp {
			return err
		}
		if werr := e.wait(ctx, d); werr != nil {
			return fmt.Errorf("%w (stopped waiting %s to retry: %w)", err, d.Round(time.Second), werr)
		}
	}
}

// post sends body once. retryAfter < 0: done (err is the final outcome);
// 0: retry on the back-off schedule; > 0: retry after that long, as the
// collector asked.
func (e *otlpExporter) post(parent context.Context, body []byte) (retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(parent, e.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return -1, err
	}
	req.Header = e.header.Clone()
	resp, err := e.client.Do(req)
	if err != nil {
		err = fmt.Errorf("otlp export: %w", err) // err names the URL
		// Retried: this attempt timing out, a reset connection. Not: the
		// caller giving up, a refused connection (no collector there).
		var ue *url.Error
		if parent.Err() == nil && (ctx.Err() != nil || errors.As(err, &ue) && ue.Temporary()) {
			return 0, err
		}
		return -1, err
	}
	defer resp.Body.Close()
	answer, rerr := io.ReadAll(io.LimitReader(resp.Body, exportMaxAnswer))
	switch c := resp.StatusCode; {
	case c >= 200 && c <= 299:
		if rerr != nil {
			return -1, fmt.Errorf("otlp export to %s: reading the answer: %w", e.url, rerr)
		}
		return -1, partialSuccess(resp.Header.Get("Content-Type"), answer)
	case c == http.StatusTooManyRequests || c == http.StatusBadGateway || c == http.StatusServiceUnavailable || c == http.StatusGatewayTimeout:
		return retryAfterHeader(resp.Header.Get("Retry-After")), fmt.Errorf("otlp export to %s: %s: %s", e.url, resp.Status, answerText(answer))
	default:
		return -1, fmt.Errorf("otlp export to %s: %s: %s", e.url, resp.Status, answerText(answer))
	}
}

// partialSuccess reports the spans a collector said it rejected, from a
// protobuf ExportTraceServiceResponse; other answers are not examined.
func partialSuccess(contentType string, answer []byte) error {
	if len(answer) == 0 || contentType != "application/x-protobuf" {
		return nil
	}
	var r coltracepb.ExportTraceServiceResponse
	if err := proto.Unmarshal(answer, &r); err != nil {
		return fmt.Errorf("otlp export: unreadable answer: %w", err)
	}
	if p := r.GetPartialSuccess(); p != nil && (p.GetRejectedSpans() != 0 || p.GetErrorMessage() != "") {
		return fmt.Errorf("otlp export: the collector rejected %d spans: %s", p.GetRejectedSpans(), p.GetErrorMessage())
	}
	return nil
}

func answerText(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "(empty answer)"
	}
	if len(b) > 512 {
		b = b[:512]
	}
	return strconv.Quote(string(b))
}

// retryAfterHeader reads Retry-After as seconds or an HTTP date; 0 when
// absent or unreadable.
func retryAfterHeader(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// backoff is the wait before retry attempt+1: 5 s doubling to at most
// 30 s, each with ±50 % jitter so that gateways restarted together do not
// retry together.
func backoff(attempt int) time.Duration {
	d := exportFirstRetry << min(attempt, 3)
	d = min(d, exportMaxRetry)
	return d/2 + rand.N(d)
}

func (e *otlpExporter) compress(b []byte) ([]byte, error) {
	e.zbuf.Reset()
	if e.zw == nil {
		e.zw = gzip.NewWriter(&e.zbuf)
	} else {
		e.zw.Reset(&e.zbuf)
	}
	if _, err := e.zw.Write(b); err != nil {
		return nil, err
	}
	if err := e.zw.Close(); err != nil {
		return nil, err
	}
	return e.zbuf.Bytes(), nil
}

// Shutdown refuses later exports; the batch span processor has flushed
// what it held before calling it.
func (e *otlpExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopped = true
	e.buf, e.zw = nil, nil
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
