package auth

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind, such as
// a key set fetch that outlived Close or an idle connection of its client.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
