package telemetry

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/coalesce"
	"github.com/switchyard/switchyard/internal/outcome"
)

// BenchmarkCallEnded is the per-call cost of the record's sinks alone: the
// log line (text, to io.Discard; "slog" through slog's own handler, the
// others as cmd/switchyard writes it), and with metrics the counters and
// the histogram.
func BenchmarkCallEnded(b *testing.B) {
	for _, bench := range []struct {
		name    string
		metrics bool
		handler slog.Handler
	}{
		{"log", false, NewTextHandler(io.Discard, slog.LevelInfo)},
		{"log+metrics", true, NewTextHandler(io.Discard, slog.LevelInfo)},
		{"slog", false, slog.NewTextHandler(io.Discard, nil)},
	} {
		b.Run(bench.name, func(b *testing.B) {
			call := benchCall(b, bench.handler, bench.metrics)
			var r outcome.Record
			b.ReportAllocs()
			for b.Loop() {
				call(&r, outcome.CodeInternal)
			}
		})
	}
}

// benchCall readies a Telemetry logging to h (with metrics when asked)
// and returns one GetTeam call's pass through it: its record begun,
// started, finished with code and ended.
func benchCall(b *testing.B, h slog.Handler, metrics bool) func(r *outcome.Record, code outcome.Code) {
	b.Helper()
	tel, err := New(Options{Logger: slog.New(h), Metrics: metrics})
	if err != nil {
		b.Fatal(err)
	}
	tel.ServeProcedures([]string{"/teams.v1.TeamsService/GetTeam"})
	req := httptest.NewRequest(http.MethodPost, "/teams.v1.TeamsService/GetTeam", nil)
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("User-Agent", "grpc-go/1.85.0")
	req.RemoteAddr = "127.0.0.1:50000"
	trailer := http.Header{"Grpc-Status": {"0"}}
	return func(r *outcome.Record, code outcome.Code) {
		r.Reset()
		r.Begin(req, time.Now())
		tel.CallStarted(r)
		r.Handled = true
		r.Finish(time.Now(), 200, trailer, outcome.EndSent, code)
		tel.CallEnded(r)
	}
}

// BenchmarkCallLineParallel is the log line's cost when every P writes
// call lines at once, as cmd/switchyard writes them: through a TextHandler
// on a coalesce.Writer (here to io.Discard). What it measures is the
// shared part of each line: the locks every call takes on its way out.
// Run it with -cpu 1,2,4...
func BenchmarkCallLineParallel(b *testing.B) {
	out := coalesce.NewWriter(io.Discard, 1<<20)
	defer out.Close(time.Second)
	call := benchCall(b, NewTextHandler(out, slog.LevelInfo), false)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var r outcome.Record
		for pb.Next() {
			call(&r, outcome.CodeOK)
		}
	})
}
