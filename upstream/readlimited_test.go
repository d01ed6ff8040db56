package upstream

import (
	"bytes"
	"io"
	"testing"
)

// chunkReader serves data in reads of at most chunk bytes and hides its
// length, like a chunked body.
type chunkReader struct {
	data  []byte
	chunk int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestReadLimitedGrowth: a body of unknown length grows its buffer by
// doubling, so reading 1 MiB takes a dozen buffers, not append's forty
// 1.25x steps, and the buffer returned is at most twice the body; the
// limit still holds (one byte past it tells a body too large).
func TestReadLimitedGrowth(t *testing.T) {
	body := bytes.Repeat([]byte("a"), 1<<20)
	var got []byte
	allocs := testing.AllocsPerRun(5, func() {
		var err error
		got, err = readLimited(&chunkReader{data: body, chunk: 32 << 10}, -1, 8<<20)
		if err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.Equal(got, body) {
		t.Fatalf("read %d bytes, want the %d of the body", len(got), len(body))
	}
	if cap(got) > 2*len(got)+512 {
		t.Errorf("buffer capacity %d for a %d-byte body, want at most about twice", cap(got), len(got))
	}
	// 512 B doubled to 2 MiB is 13 buffers; the reader and LimitReader 2.
	if allocs > 16 {
		t.Errorf("%v allocations to read 1 MiB of unknown length, want at most 16", allocs)
	}

	for _, tt := range []struct {
		name  string
		n     int
		limit int64
		size  int64
		want  int
	}{
		{"at the limit", 1000, 1000, -1, 1000},
		{"one past the limit", 1001, 1000, -1, 1001},
		{"far past the limit", 100000, 1000, -1, 1001},
		{"limit under the first buffer", 100, 10, -1, 11},
		{"longer than announced", 5000, 100000, 10, 5000},
	} {
		got, err := readLimited(&chunkReader{data: bytes.Repeat([]byte("b"), tt.n), chunk: 700}, tt.size, tt.limit)
		if err != nil || len(got) != tt.want {
			t.Errorf("%s: read %d bytes, %v; want %d", tt.name, len(got), err, tt.want)
		}
	}
}
