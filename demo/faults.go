package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"time"
)

// Faults are the failures a service injects into its non-admin requests.
// The zero value injects none. In JSON the latency is a Go duration string:
//
//	{"latency":"50ms","error_rate":0.2,"error_status":500,"down":false,"reset":false,"hostile":"","huge_bytes":9437184}
//
// A request meets them in this order: Reset, Down, Latency, ErrorRate,
// then Hostile.
type Faults struct {
	// Latency is added before every answer; a cancelled request stops
	// waiting early. Zero adds none.
	Latency time.Duration
	// ErrorRate is the fraction, from 0 to 1, of requests answered
	// ErrorStatus {"error":"injected failure"}. 0 and 1 are exact.
	ErrorRate float64
	// ErrorStatus is the status of the requests failed by ErrorRate, an
	// HTTP error status from 400 to 599, e.g. 503 to be retried by a
	// gateway that does not retry 500. Zero means 500, and decoding JSON
	// stores 500 as zero, so equal faults compare equal.
	ErrorStatus int
	// Down answers every request 503 {"error":"service down"}.
	Down bool
	// Reset resets the TCP connection of every request without answering
	// (SO_LINGER 0, then close), as a crashed or firewalled service would:
	// the client reads "connection reset by peer" instead of a response.
	// A connection that cannot be hijacked (HTTP/2) has its stream
	// aborted instead.
	Reset bool
	// Hostile answers every request the faults above let through in a
	// way that breaks the HTTP or JSON contract: a body cut short, reset
	// mid-body, too large, endless, dripping or not JSON (see Hostile).
	// "" answers normally.
	Hostile Hostile
	// HugeBytes is the size of a HostileHuge body, from 2 bytes to 1 GiB.
	// Zero means 9 MiB, and decoding JSON stores 9 MiB as zero.
	HugeBytes int
}

// faultsExample is a complete Faults object, quoted in decoding errors.
const faultsExample = `{"latency":"50ms","error_rate":0.2,"error_status":500,"down":false,"reset":false,"hostile":"","huge_bytes":9437184}`

// defaultErrorStatus is the status of injected failures when
// Faults.ErrorStatus is zero.
const defaultErrorStatus = 500

// faultsJSON is the wire form of Faults.
type faultsJSON struct {
	Latency     string  `json:"latency"`
	ErrorRate   float64 `json:"error_rate"`
	ErrorStatus int     `json:"error_status"`
	Down        bool    `json:"down"`
	Reset       bool    `json:"reset"`
	Hostile     Hostile `json:"hostile"`
	HugeBytes   int     `json:"huge_bytes"`
}

// faultsPatch is the wire form of a partial update: absent fields are nil.
type faultsPatch struct {
	Latency     *string  `json:"latency"`
	ErrorRate   *float64 `json:"error_rate"`
	ErrorStatus *int     `json:"error_status"`
	Down        *bool    `json:"down"`
	Reset       *bool    `json:"reset"`
	Hostile     *Hostile `json:"hostile"`
	HugeBytes   *int     `json:"huge_bytes"`
}

// Validate reports the first field that is out of range, by its JSON name.
func (f Faults) Validate() error {
	if f.Latency < 0 {
		return fmt.Errorf("latency: must not be negative, got %s", f.Latency)
	}
	if math.IsNaN(f.ErrorRate) || f.ErrorRate < 0 || f.ErrorRate > 1 {
		return fmt.Errorf("error_rate: must be between 0 and 1, got %v", f.ErrorRate)
	}
	if f.ErrorStatus != 0 && (f.ErrorStatus < 400 || f.ErrorStatus > 599) {
		return fmt.Errorf("error_status: must be an HTTP error status from 400 to 599, got %d", f.ErrorStatus)
	}
	if err := f.Hostile.validate(); err != nil {
		return err
	}
	if f.HugeBytes != 0 && (f.HugeBytes < 2 || f.HugeBytes > maxHugeBytes) {
		return fmt.Errorf("huge_bytes: must be from 2 to %d, got %d", maxHugeBytes, f.HugeBytes)
	}
	return nil
}

// errorStatus returns the status of the requests failed by ErrorRate.
func (f Faults) errorStatus() int {
	if f.ErrorStatus == 0 {
		return defaultErrorStatus
	}
	return f.ErrorStatus
}

// MarshalJSON encodes the faults in their wire form, with the error status
// and huge body size in effect (500 and 9 MiB for zero fields).
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		Latency:     f.Latency.String(),
		ErrorRate:   f.ErrorRate,
		ErrorStatus: f.errorStatus(),
		Down:        f.Down,
		Reset:       f.Reset,
		Hostile:     f.Hostile,
		HugeBytes:   f.hugeBytes(),
	})
}

// UnmarshalJSON applies the fields present in b to f and leaves the others
// unchanged, so decoding {"down":true} into the current faults is a partial
// update. Unknown fields and out-of-range values are errors naming the
// field; on error f is unchanged.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var p faultsPatch
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return fmt.Errorf("%s: must be a JSON %s, got %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return fmt.Errorf("faults must be a JSON object like %s: %w", faultsExample, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("faults must be a single JSON object, found more data after it")
	}
	next := *f
	if p.Latency != nil {
		d, err := time.ParseDuration(*p.Latency)
		if err != nil {
			return fmt.Errorf("latency: invalid duration %q, want e.g. \"50ms\"", *p.Latency)
		}
		next.Latency = d
	}
	if p.ErrorRate != nil {
		next.ErrorRate = *p.ErrorRate
	}
	if p.ErrorStatus != nil {
		next.ErrorStatus = *p.ErrorStatus
		if next.ErrorStatus == defaultErrorStatus {
			next.ErrorStatus = 0
		}
	}
	if p.Down != nil {
		next.Down = *p.Down
	}
	if p.Reset != nil {
		next.Reset = *p.Reset
	}
	if p.Hostile != nil {
		next.Hostile = *p.Hostile
	}
	if p.HugeBytes != nil {
		next.HugeBytes = *p.HugeBytes
		if next.HugeBytes == defaultHugeBytes {
			next.HugeBytes = 0
		}
	}
	if err := next.Validate(); err != nil {
		return err
	}
	*f = next
	return nil
}

// jsonKind names a Go kind the way a JSON author would.
func jsonKind(goKind string) string {
	switch goKind {
	case "float64":
		return "number"
	case "bool":
		return "boolean"
	case "int":
		return "integer"
	default:
		return goKind
	}
}

// wait blocks for d or until ctx is done, whichever comes first, and returns
// ctx's error in the second case. It stops its timer either way.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// resetConnection takes the connection of w over and closes it with
// SO_LINGER 0, so that the kernel sends a TCP RST instead of a FIN and the
// client reads "connection reset by peer" without any response. Where w
// cannot be hijacked (HTTP/2, a recorder) it panics with
// http.ErrAbortHandler, which net/http's server turns into an aborted
// stream or closed connection, without logging a stack trace.
func resetConnection(w http.ResponseWriter) error {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	for {
		u, ok := raw.(interface{ NetConn() net.Conn }) // *tls.Conn
		if !ok {
			break
		}
		raw = u.NetConn()
	}
	var lingerErr error
	if tc, ok := raw.(*net.TCPConn); ok {
		lingerErr = tc.SetLinger(0)
	}
	return errors.Join(lingerErr, conn.Close())
}
