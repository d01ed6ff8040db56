package cache

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind: a
// subscriber, a flight or a refresh of a Cache that was not closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
