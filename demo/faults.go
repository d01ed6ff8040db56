package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Faults are the failures a service injects into its non-admin requests.
// The zero value injects none. In JSON the latency is a Go duration string:
//
//	{"latency":"50ms","error_rate":0.2,"down":false}
type Faults struct {
	// Latency is added before every answer; a cancelled request stops
	// waiting early. Zero adds none.
	Latency time.Duration
	// ErrorRate is the fraction, from 0 to 1, of requests answered 500
	// {"error":"injected failure"}. 0 and 1 are exact.
	ErrorRate float64
	// Down answers every request 503 {"error":"service down"}.
	Down bool
}

// faultsJSON is the wire form of Faults.
type faultsJSON struct {
	Latency   string  `json:"latency"`
	ErrorRate float64 `json:"error_rate"`
	Down      bool    `json:"down"`
}

// faultsPatch is the wire form of a partial update: absent fields are nil.
type faultsPatch struct {
	Latency   *string  `json:"latency"`
	ErrorRate *float64 `json:"error_rate"`
	Down      *bool    `json:"down"`
}

// Validate reports the first field that is out of range, by its JSON name.
func (f Faults) Validate() error {
	if f.Latency < 0 {
		return fmt.Errorf("latency: must not be negative, got %s", f.Latency)
	}
	if math.IsNaN(f.ErrorRate) || f.ErrorRate < 0 || f.ErrorRate > 1 {
		return fmt.Errorf("error_rate: must be between 0 and 1, got %v", f.ErrorRate)
	}
	return nil
}

// MarshalJSON encodes the faults in their wire form.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{Latency: f.Latency.String(), ErrorRate: f.ErrorRate, Down: f.Down})
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
		return fmt.Errorf("faults must be a JSON object like %s: %w", `{"latency":"50ms","error_rate":0.2,"down":false}`, err)
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
	if p.Down != nil {
		next.Down = *p.Down
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
