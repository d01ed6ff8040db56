package routes

import (
	"bytes"
	"errors"
	"testing"
)

// recordWriter records a copy of each Write's bytes and the address of
// its first byte, and fails the write numbered failAt (1-based; 0 never).
type recordWriter struct {
	writes [][]byte
	first  []*byte
	failAt int
}

func (w *recordWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	w.first = append(w.first, &p[0])
	if len(w.writes) == w.failAt {
		return 0, errors.New("client went away")
	}
	return len(p), nil
}

// TestWriteParts: a response's parts reach the client in order with a
// final newline; a part of directWrite bytes or more is handed to the
// writer as the same slice (no copy of an upstream body), small parts are
// gathered into few writes, and a failed write stops the rest.
func TestWriteParts(t *testing.T) {
	big := bytes.Repeat([]byte("x"), directWrite)
	huge := bytes.Repeat([]byte("y"), 3*writeBufSize)
	small := bytes.Repeat([]byte("s"), directWrite-1)
	parts := [][]byte{[]byte("{"), []byte(`"a":`), big, []byte(","), []byte(`"b":`), small, small, small, small, small, []byte(","), []byte(`"c":`), huge, []byte("}")}

	var w recordWriter
	writeParts(&w, parts)
	var got, want []byte
	for _, p := range w.writes {
		got = append(got, p...)
	}
	for _, p := range parts {
		want = append(want, p...)
	}
	want = append(want, '\n')
	if !bytes.Equal(got, want) {
		t.Fatalf("wrote %d bytes, want the %d bytes of the parts and a newline", len(got), len(want))
	}
	direct := 0
	for i, p := range w.writes {
		if w.first[i] == &big[0] || w.first[i] == &huge[0] {
			direct++
		}
		if len(p) > writeBufSize && w.first[i] != &huge[0] {
			t.Errorf("a gathered write of %d bytes exceeds the %d-byte buffer", len(p), writeBufSize)
		}
	}
	if direct != 2 {
		t.Errorf("%d of the 2 large parts were written as given, want both (not copied)", direct)
	}
	// {,"a": | big | ,"b":,small×3 | small×2,,"c": | huge | }\n
	if len(w.writes) != 6 {
		t.Errorf("%d writes, want 6", len(w.writes))
	}

	stop := recordWriter{failAt: 2}
	writeParts(&stop, parts)
	if len(stop.writes) != 2 {
		t.Errorf("after a failed write: %d writes, want the 2 up to the failure", len(stop.writes))
	}
}
