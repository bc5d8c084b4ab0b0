package health

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchyard/switchyard/internal/waits"
)

// A watch waiting for the next change tells the transport it waits
// (internal/waits): otherwise idle watches, one per health-checking
// client, would count as running handlers and hold back other calls.
func TestWatchTellsTheTransportItWaits(t *testing.T) {
	t.Parallel()
	c := NewChecker("svc")
	var waiting atomic.Int32
	ctx, cancel := context.WithCancel(context.WithValue(t.Context(), waits.ContextKey, waits.WaiterFunc(func() { waiting.Add(1) })))
	sent := make(chan healthpb.HealthCheckResponse_ServingStatus, 4)
	done := make(chan error, 1)
	go func() {
		done <- c.watch(ctx, "svc", func(s healthpb.HealthCheckResponse_ServingStatus) error {
			sent <- s
			return nil
		})
	}()
	if s := <-sent; s != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first status %v", s)
	}
	for deadline := time.Now().Add(5 * time.Second); waiting.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the watch waits for a change without telling the transport")
		}
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("the watch ended without an error when its client went away")
	}
}
