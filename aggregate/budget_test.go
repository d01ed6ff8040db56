package aggregate

import (
	"context"
	"fmt"
	"testing"
)

// allocBudgets are the allocations one request may cost: Execute and
// AppendJSON of a plan of width independent calls (fanOutPlan), each with
// a path parameter and a constant query value, against instant in-process
// upstreams that allocate one Response per call. Each is what the engine
// achieved when it was set, plus a small margin: raise one only for a
// reason worth its cost, and lower it when an allocation goes away.
//
// What a request costs at fan-out 4 (15 allocations): the execution state
// and its parts (2), the context cancelling the calls when a required one
// fails (2), a goroutine for each call but the one Execute runs itself
// (3), and per call its rendered path (1) and the upstream's Response (1).
// The constant query is built once, when the plan is compiled (it cost 3
// per call before: map, its group, the value's slice).
var allocBudgets = []struct {
	width  int
	budget float64
}{
	{1, 5},   // achieved 4
	{4, 17},  // achieved 15
	{16, 54}, // achieved 51
}

// requestAllocs returns the average allocations of one request of plan p.
func requestAllocs(p *Plan) float64 {
	params := map[string]string{"id": "42"}
	ctx := context.Background()
	var buf []byte
	return testing.AllocsPerRun(200, func() {
		res, err := p.Execute(ctx, params)
		if err != nil {
			panic(err)
		}
		if buf, err = res.AppendJSON(buf[:0]); err != nil {
			panic(err)
		}
	})
}

// TestAllocationBudget fails in a plain go test when a request costs more
// allocations than its budget, so that CI catches a regression without
// running benchmarks.
func TestAllocationBudget(t *testing.T) {
	for _, tt := range allocBudgets {
		t.Run(fmt.Sprintf("fanout=%d", tt.width), func(t *testing.T) {
			if got := requestAllocs(fanOutPlan(t, tt.width)); got > tt.budget {
				t.Errorf("a request of fan-out %d costs %.0f allocations, over its budget of %.0f (see allocBudgets)", tt.width, got, tt.budget)
			}
		})
	}
}

// BenchmarkExecuteBudget runs requests of fan-out 4, and fails first if
// one costs more allocations than its budget. They are counted apart from
// the timed loop, over 200 requests as TestAllocationBudget counts them,
// so that the check holds with -benchtime=1x too.
func BenchmarkExecuteBudget(b *testing.B) {
	const width = 4
	budget := allocBudgets[1].budget
	if allocBudgets[1].width != width {
		b.Fatalf("allocBudgets[1] is for fan-out %d, want %d", allocBudgets[1].width, width)
	}
	p := fanOutPlan(b, width)
	if got := requestAllocs(p); got > budget { // and a warm-up for the loop
		b.Fatalf("a request of fan-out %d costs %.0f allocations, over its budget of %.0f (see allocBudgets)", width, got, budget)
	}
	runRequests(b, p, "42")
}
