package upstream

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind, such as
// a connection of a Client that was not closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
