package telemetry_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/telemetry"
)

// tracedTo is a Telemetry with metrics whose spans go over OTLP to the
// collector h.
func tracedTo(t *testing.T, h http.Handler) (*telemetry.Telemetry, *telemetry.Tracing) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	env := map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_TIMEOUT": "10000"}
	tracing, err := telemetry.TracingFromEnv(t.Context(), func(name string) string { return env[name] })
	if err != nil {
		t.Fatal(err)
	}
	tel, err := telemetry.New(telemetry.Options{Logger: slog.New(slog.DiscardHandler), Metrics: true, Tracing: tracing})
	if err != nil {
		t.Fatal(err)
	}
	return tel, tracing
}

// endSpans ends n sampled spans.
func endSpans(tracing *telemetry.Tracing, n int) {
	for range n {
		_, span := tracing.Tracer().Start(context.Background(), "span")
		span.End()
	}
}

// spanCounts reads the span counters: exported, and dropped by reason.
func spanCounts(t *testing.T, tel *telemetry.Telemetry) map[string]int {
	t.Helper()
	got := map[string]int{}
	families := scrape(t, tel.Metrics())
	for _, m := range families["switchyard_trace_spans_exported_total"].GetMetric() {
		got["exported"] = int(m.GetCounter().GetValue())
	}
	for _, m := range families["switchyard_trace_spans_dropped_total"].GetMetric() {
		got[labels(m)["reason"]] = int(m.GetCounter().GetValue())
	}
	return got
}

// waitSpanCounts waits until the span counters read want.
func waitSpanCounts(t *testing.T, tel *telemetry.Telemetry, want map[string]int) {
	t.Helper()
	var got map[string]int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		got = spanCounts(t, tel)
		if equalCounts(got, want) {
			return
		}
	}
	t.Fatalf("span counters %v, want %v", got, want)
}

func equalCounts(a, b map[string]int) bool {
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Spans a collector refuses, and spans that find the export queue full
// (a collector that does not answer), are dropped: an operator sees how
// many, and why, in the metrics, besides the sampled WARN lines.
func TestDroppedSpansAreCounted(t *testing.T) {
	t.Parallel()
	t.Run("taken", func(t *testing.T) {
		t.Parallel()
		tel, tracing := tracedTo(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
		endSpans(tracing, 512)
		waitSpanCounts(t, tel, map[string]int{"exported": 512, "export_failed": 0, "queue_full": 0})
	})
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		tel, tracing := tracedTo(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no", http.StatusBadRequest)
		}))
		t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
		endSpans(tracing, 512) // one full batch: exported at once
		waitSpanCounts(t, tel, map[string]int{"exported": 0, "export_failed": 512, "queue_full": 0})
	})
	t.Run("unanswered", func(t *testing.T) {
		t.Parallel()
		release, arrived := make(chan struct{}), make(chan struct{}, 1)
		tel, tracing := tracedTo(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case arrived <- struct{}{}:
			default:
			}
			<-release
		}))
		released := sync.OnceFunc(func() { close(release) })
		t.Cleanup(released)    // before the collector's Close, which waits for its handlers
		endSpans(tracing, 512) // the batch that waits for the collector
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("no export of a full batch")
		}
		endSpans(tracing, 2048+10) // the queue, and 10 more
		waitSpanCounts(t, tel, map[string]int{"exported": 0, "export_failed": 0, "queue_full": 10})
		// A shutdown that cannot send what is queued says how much is lost.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := tel.Shutdown(ctx)
		released()
		if err == nil || !strings.Contains(err.Error(), "2560 spans not sent") {
			t.Errorf("Shutdown with the collector unanswering: %v, want it to count the 2560 spans not sent", err)
		}
	})
}
