package demo

import (
	"fmt"
	"io"
	"net/http"
)

// maxAdminBody bounds the body of PUT /_demo/faults.
const maxAdminBody = 64 << 10

// registerAdmin mounts the /_demo/ endpoints (faults, stats, reset, demo
// tokens), GET /metrics and the demo issuer's JWKS. They
// bypass instrument and metrics.observe, so they are never counted and
// never affected by faults.
func (s *Service) registerAdmin() {
	s.mux.Handle("GET /metrics", s.metrics.handler())
	s.mux.HandleFunc("GET "+JWKSPath, jwksHandler)
	s.mux.Handle("GET /_demo/token", TokenHandler())
	s.mux.HandleFunc("GET /_demo/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	s.mux.HandleFunc("PUT /_demo/faults", s.putFaults)
	s.mux.HandleFunc("GET /_demo/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	s.mux.HandleFunc("POST /_demo/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		writeJSON(w, http.StatusOK, s.Stats())
	})
	s.mux.HandleFunc("/_demo/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no admin route for "+r.Method+" "+r.URL.Path)
	})
}

// putFaults applies the JSON fields in the body to the current faults and
// answers with the result.
func (s *Service) putFaults(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("read faults body: %v", err))
		return
	}
	f, err := s.updateFaults(func(f *Faults) error { return f.UnmarshalJSON(body) })
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.logger.Info("faults changed", "latency", f.Latency, "error_rate", f.ErrorRate,
		"error_status", f.errorStatus(), "down", f.Down, "reset", f.Reset, "hostile", f.Hostile, "huge_bytes", f.hugeBytes())
	writeJSON(w, http.StatusOK, f)
}
