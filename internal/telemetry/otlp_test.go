package telemetry

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// flakyCollector answers the exports it receives with the statuses of
// answers in turn (200 once they run out), and keeps their bodies.
type flakyCollector struct {
	mu      sync.Mutex
	answers []int
	header  http.Header // sent with every answer
	bodies  [][]byte
}

func (c *flakyCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bodies = append(c.bodies, body)
	for k, v := range c.header {
		w.Header()[k] = v
	}
	if len(c.answers) > 0 {
		w.WriteHeader(c.answers[0])
		c.answers = c.answers[1:]
	}
}

func (c *flakyCollector) received() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.bodies...)
}

// exportTo exports one span to url with the export timeout given, and
// returns how long it took and the error.
func exportTo(t *testing.T, url string, timeout string) (time.Duration, error) {
	t.Helper()
	e, err := newOTLPExporter(func(name string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": url, "OTEL_EXPORTER_OTLP_TIMEOUT": timeout}[name]
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = e.ExportSpans(context.Background(), []sdktrace.ReadOnlySpan{tracetest.SpanStub{Name: "GetTeam"}.Snapshot()})
	return time.Since(start), err
}

// An export the collector cannot take now (OTLP/HTTP's retryable
// answers) is sent again, the same, until it is taken; one refused
// outright is not.
func TestOTLPExportRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		answers []int
		tries   int
		fails   bool
	}{
		{"taken at once", nil, 1, false},
		{"503, 502, 504 and 429, then taken", []int{503, 502, 504, 429}, 5, false},
		{"refused: 400", []int{400}, 1, true},
		{"refused after a 503: 401", []int{503, 401}, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &flakyCollector{answers: tc.answers}
			srv := httptest.NewServer(c)
			defer srv.Close()
			_, err := exportTo(t, srv.URL+"/v1/traces", "10000")
			if (err != nil) != tc.fails {
				t.Errorf("export: %v; want failing %v", err, tc.fails)
			}
			bodies := c.received()
			if len(bodies) != tc.tries {
				t.Fatalf("%d tries, want %d", len(bodies), tc.tries)
			}
			for i, b := range bodies {
				if len(b) == 0 || !bytes.Equal(b, bodies[0]) {
					t.Errorf("try %d sent %d bytes, unlike the first (%d)", i+1, len(b), len(bodies[0]))
				}
			}
		})
	}
}

// Retries stay within the export's timeout: a Retry-After beyond it ends
// the export at once, and a collector that closes every connection is
// tried again until the timeout, not longer.
func TestOTLPExportRetriesWithinTimeout(t *testing.T) {
	t.Parallel()
	t.Run("Retry-After beyond the timeout", func(t *testing.T) {
		t.Parallel()
		c := &flakyCollector{answers: []int{503, 503}, header: http.Header{"Retry-After": {"30"}}}
		srv := httptest.NewServer(c)
		defer srv.Close()
		took, err := exportTo(t, srv.URL+"/v1/traces", "2000")
		if err == nil || len(c.received()) != 1 || took > time.Second {
			t.Errorf("export: %v after %v and %d tries; want a failure at the first try", err, took, len(c.received()))
		}
	})
	t.Run("connections closed", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var accepted atomic.Int32
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted.Add(1)
				_ = c.Close()
			}
		}()
		took, err := exportTo(t, "http://"+ln.Addr().String()+"/v1/traces", "600")
		if err == nil || accepted.Load() < 2 || took > 2*time.Second {
			t.Errorf("export: %v after %v and %d connections; want a failure after more than one try, within the 600 ms timeout", err, took, accepted.Load())
		}
	})
}
