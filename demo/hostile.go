package demo

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Hostile is a way of answering that breaks the HTTP or JSON contract, as a
// buggy, overloaded or malicious service does. The zero value answers
// normally. The modes that start from the real answer keep its status and
// headers.
type Hostile string

// The hostile modes.
const (
	// HostileTruncate announces the real answer's Content-Length, sends
	// half of its body and closes the connection.
	HostileTruncate Hostile = "truncate"
	// HostileResetMidBody announces the real answer's Content-Length,
	// sends half of its body, then resets the connection (TCP RST).
	HostileResetMidBody Hostile = "reset_mid_body"
	// HostileHuge answers 200 with a valid JSON object of Faults.HugeBytes
	// bytes (default 9 MiB, over the gateway's default 8 MiB
	// max_response_bytes), streamed without a Content-Length.
	HostileHuge Hostile = "huge"
	// HostileEndless answers 200 with a JSON array streamed without a
	// Content-Length that never ends: 1 KiB of it every 100ms until the
	// client goes away.
	HostileEndless Hostile = "endless"
	// HostileDrip sends the real answer with its Content-Length, one byte
	// every 100ms.
	HostileDrip Hostile = "drip"
	// HostileGarbage answers 200 with an HTML page: a body that is not
	// JSON.
	HostileGarbage Hostile = "garbage"
)

// HostileModes lists every hostile mode.
var HostileModes = []Hostile{HostileTruncate, HostileResetMidBody, HostileHuge, HostileEndless, HostileDrip, HostileGarbage}

// Pacing and sizes of the hostile modes.
const (
	defaultHugeBytes = 9 << 20
	maxHugeBytes     = 1 << 30
	hugePiece        = 64 << 10 // written at once by HostileHuge
	endlessInterval  = 100 * time.Millisecond
	endlessPiece     = 1 << 10 // written every endlessInterval
	dripInterval     = 100 * time.Millisecond
	// resetPause lets the client read the headers and the partial body
	// before the reset, which would otherwise race them.
	resetPause = 50 * time.Millisecond
)

// garbageBody is HostileGarbage's body: what a misconfigured proxy in
// front of a service answers.
const garbageBody = "<html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>\n"

// validate reports an unknown mode.
func (h Hostile) validate() error {
	if h == "" || slices.Contains(HostileModes, h) {
		return nil
	}
	names := make([]string, len(HostileModes))
	for i, m := range HostileModes {
		names[i] = string(m)
	}
	return fmt.Errorf("hostile: unknown mode %q, want one of %s, or \"\" for none", string(h), strings.Join(names, ", "))
}

// hugeBytes is the size of a HostileHuge body.
func (f Faults) hugeBytes() int {
	if f.HugeBytes == 0 {
		return defaultHugeBytes
	}
	return f.HugeBytes
}

// answerHostile answers r in f's hostile mode; h gives the real answer
// to the modes that start from it.
func (s *Service) answerHostile(w http.ResponseWriter, r *http.Request, f Faults, h http.Handler) {
	switch f.Hostile {
	case HostileGarbage:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(garbageBody)))
		_, _ = w.Write([]byte(garbageBody))
		return
	case HostileHuge:
		writeHuge(w, f.hugeBytes())
		return
	case HostileEndless:
		s.writeEndless(w, r)
		return
	}
	rec := &recorder{header: make(http.Header)}
	h.ServeHTTP(rec, r)
	rec.WriteHeader(http.StatusOK) // if the handler wrote nothing
	for k, vs := range rec.header {
		w.Header()[k] = vs
	}
	body := rec.body.Bytes()
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.status)
	rc := http.NewResponseController(w)
	switch f.Hostile {
	case HostileTruncate:
		// Fewer bytes than announced: net/http closes the connection
		// when the handler returns.
		_, _ = w.Write(body[:len(body)/2])
		_ = rc.Flush()
	case HostileResetMidBody:
		_, _ = w.Write(body[:len(body)/2])
		_ = rc.Flush()
		if wait(r.Context(), resetPause) != nil {
			return
		}
		if err := resetConnection(w); err != nil {
			s.logger.Warn("injected reset mid-body", "path", r.URL.Path, "err", err)
		}
	case HostileDrip:
		_ = rc.Flush()
		for i := range body {
			if _, err := w.Write(body[i : i+1]); err != nil {
				return
			}
			if rc.Flush() != nil || wait(r.Context(), dripInterval) != nil {
				return
			}
		}
	}
}

// writeHuge streams a JSON object of exactly size bytes.
func writeHuge(w http.ResponseWriter, size int) {
	const head, tail = `{"hostile":"huge","padding":"`, `"}`
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write([]byte(head)); err != nil {
		return
	}
	piece := bytes.Repeat([]byte("x"), hugePiece)
	for left := size - len(head) - len(tail); left > 0; left -= hugePiece {
		if _, err := w.Write(piece[:min(left, hugePiece)]); err != nil {
			return
		}
	}
	_, _ = w.Write([]byte(tail))
}

// writeEndless streams the start of a JSON array and then a piece of it
// every endlessInterval, until the client goes away or the service shuts
// down.
func (s *Service) writeEndless(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	rc := http.NewResponseController(w)
	piece := bytes.Repeat([]byte("0,"), endlessPiece/2)
	if _, err := w.Write([]byte(`{"hostile":"endless","items":[`)); err != nil {
		return
	}
	for {
		if _, err := w.Write(piece); err != nil || rc.Flush() != nil {
			return
		}
		if err := wait(r.Context(), endlessInterval); err != nil {
			s.logger.Debug("endless answer ended", "path", r.URL.Path, "err", err)
			return
		}
	}
}

// recorder keeps a handler's answer for a hostile mode to mangle.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rec *recorder) Header() http.Header { return rec.header }

func (rec *recorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
}

func (rec *recorder) Write(b []byte) (int, error) {
	rec.WriteHeader(http.StatusOK)
	return rec.body.Write(b)
}
