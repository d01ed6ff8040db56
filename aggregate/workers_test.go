package aggregate

import (
	"sync"
	"testing"
	"time"
)

// TestWorkersReuse: calls handed over one after another run on one kept
// worker; at most max workers are kept, the rest run on goroutines of
// their own; an idle worker ends; Close waits for busy workers, and calls
// handed over after Close still run.
func TestWorkersReuse(t *testing.T) {
	w := NewWorkers(2)
	ran := make(chan struct{})
	w.Go(func() { ran <- struct{}{} })
	<-ran
	for range 20 {
		handOff(t, w, func() { ran <- struct{}{} }) // taken by the kept worker
		<-ran
	}
	if n := w.n.Load(); n != 1 {
		t.Errorf("%d workers after 20 calls one after another, want 1", n)
	}

	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		w.Go(func() { defer wg.Done(); <-release })
	}
	if n := w.n.Load(); n != 2 {
		t.Errorf("%d workers with 5 blocked calls, want the max, 2", n)
	}
	close(release)
	wg.Wait()

	w.Close()
	if n := w.n.Load(); n != 0 {
		t.Errorf("%d workers after Close, want 0", n)
	}
	done := make(chan struct{})
	w.Go(func() { close(done) })
	<-done

	idle := NewWorkers(4)
	idle.idle = time.Millisecond
	idle.Go(func() {})
	waitIdle(t, idle, 0)
	idle.Close()

	var none *Workers
	done2 := make(chan struct{})
	none.Go(func() { close(done2) })
	<-done2
}

// waitIdle waits until w has n workers and, when n > 0, one is waiting to
// receive a call; it fails the test after a generous bound.
func waitIdle(t *testing.T, w *Workers, n int32) {
	t.Helper()
	for range 5000 {
		if w.n.Load() == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("workers: %d, want %d", w.n.Load(), n)
}

// handOff hands f to an idle kept worker, as Go does first, waiting for
// one to be idle; it fails the test after a generous bound.
func handOff(t *testing.T, w *Workers, f func()) {
	t.Helper()
	for range 5000 {
		select {
		case w.tasks <- f:
			return
		default:
			time.Sleep(time.Millisecond)
		}
	}
	t.Fatal("no idle worker took the call")
}
