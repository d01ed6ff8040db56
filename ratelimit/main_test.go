package ratelimit

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: the
// store's clean-up of a Limiter that was not closed, a Redis client's pool,
// a proxy's copiers.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
