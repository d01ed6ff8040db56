package observability

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// blockingHandler is a log handler whose Handle waits for release: the
// access line of a request cannot be written until the test allows it.
type blockingHandler struct {
	slog.Handler
	release chan struct{}
}

func (blockingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h blockingHandler) Handle(ctx context.Context, r slog.Record) error {
	<-h.release
	return nil
}

// TestResponseSentBeforeObserved: a response of declared length reaches
// the client while its access line is still being written (the log
// handler is blocked until the client has read the whole body); one of
// undeclared length is left to net/http, which still gives it a
// Content-Length instead of chunking it.
func TestResponseSentBeforeObserved(t *testing.T) {
	const body = `{"ok":true}`
	release := make(chan struct{})
	tel, err := New(context.Background(), Config{}, Build{Service: "x"},
		Options{Logger: slog.New(blockingHandler{slog.DiscardHandler, release})})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	h := tel.Server(ServerOptions{Route: func(*http.Request) string { return "/r" }})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/declared" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		io.WriteString(w, body)
	}))
	s := httptest.NewServer(h)
	defer s.Close()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(s.URL + "/declared")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	select {
	case b := <-got:
		if b != body {
			t.Errorf("body %q, want %q", b, body)
		}
	case <-time.After(10 * time.Second):
		t.Error("the response waited for its access line")
	}
	close(release) // the access lines of both requests are written at once from here

	resp, err := http.Get(s.URL + "/undeclared")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != body || resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) != 0 {
		t.Errorf("undeclared: %q, length %d, transfer encoding %q; want net/http's Content-Length", b, resp.ContentLength, resp.TransferEncoding)
	}
}
