package waits_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/waits"
)

// Begin reaches the Waiter beneath the contexts a handler derives (values,
// deadlines), and does nothing where no server put one.
func TestBeginFindsTheServersWaiter(t *testing.T) {
	var n atomic.Int32
	ctx := context.WithValue(t.Context(), waits.ContextKey, waits.WaiterFunc(func() { n.Add(1) }))
	ctx = context.WithValue(ctx, struct{ k int }{1}, "connect's call information")
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	waits.Begin(ctx)
	waits.Begin(ctx)
	if got := n.Load(); got != 2 {
		t.Fatalf("the Waiter heard %d calls of Begin, want 2", got)
	}
	waits.Begin(t.Context()) // no Waiter: nothing happens, nothing panics
	waits.Begin(context.WithValue(t.Context(), waits.ContextKey, "not a Waiter"))
}
