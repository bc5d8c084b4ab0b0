// Package telemetry turns the transport's call-outcome records
// (internal/outcome) into what operators read: one log line per call,
// Prometheus metrics through the OpenTelemetry SDK, and OpenTelemetry
// server spans; and serves the admin listener (/metrics, /debug/pprof/,
// /livez, /readyz).
//
// One record feeds all three, so a log line, a metric and a span never
// disagree about a call, and calls rejected before any handler (which
// connect interceptors, otelconnect's included, never see) are counted
// like the rest.
package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/outcome"
)

// Options configure New.
type Options struct {
	// Logger receives one line per call (slog.Default if nil).
	Logger *slog.Logger
	// Metrics collects the Prometheus metrics (Metrics() serves them).
	Metrics bool
	// Tracing exports a server span per call; nil for none. See
	// TracingFromEnv.
	Tracing *Tracing
	// LogLinesDropped, if set, reports the log lines that Logger's
	// destination did not take in time and that were dropped (the
	// switchyard binary's coalesce.Writer.Dropped): a metric.
	LogLinesDropped func() int64
}

// Telemetry is the outcome.Observer of a server: the sinks of its records.
type Telemetry struct {
	logs    *logSink
	metrics *metrics
	tracing *Tracing
	logger  *slog.Logger

	logLinesDropped func() int64 // Options.LogLinesDropped

	// procedures maps every served procedure to its index; every other
	// path is the one value "unknown" (procedureUnknown) in metrics and
	// span names, so label values stay bounded.
	procedures map[string]int
	names      []string
}

var _ outcome.Observer = (*Telemetry)(nil)

// procedureUnknown is the procedure label of every path that is not a
// served procedure.
const procedureUnknown = "unknown"

// New builds the sinks of opts.
func New(opts Options) (*Telemetry, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	t := &Telemetry{
		tracing:         opts.Tracing,
		logLinesDropped: opts.LogLinesDropped,
		procedures:      map[string]int{},
		names:           []string{procedureUnknown},
	}
	t.logger = slog.New(traceHandler{opts.Logger.Handler()})
	t.logs = newLogSink(t.logger.Handler())
	if th, ok := opts.Logger.Handler().(*TextHandler); ok {
		t.logs.text = th
	}
	if opts.Metrics {
		m, err := newMetrics(t)
		if err != nil {
			return nil, err
		}
		t.metrics = m
	}
	return t, nil
}

// Logger is the configured logger, adding the trace and span IDs of the
// context it is given (a handler's, under a span) to every line.
func (t *Telemetry) Logger() *slog.Logger { return t.logger }

// ServeProcedures declares the procedures served (paths,
// "/pkg.Service/Method"): they become the procedure label values, and
// every other path is "unknown". Call it before serving.
func (t *Telemetry) ServeProcedures(paths []string) {
	for _, p := range paths {
		if _, ok := t.procedures[p]; !ok {
			t.procedures[p] = len(t.names)
			t.names = append(t.names, p)
		}
	}
	if t.metrics != nil {
		t.metrics.sized(len(t.names))
	}
}

// procedure is the index of a record's procedure (0: unknown).
func (t *Telemetry) procedure(path string) int {
	return t.procedures[path]
}

// CallStarted implements outcome.Observer.
func (t *Telemetry) CallStarted(r *outcome.Record) {
	if t.metrics != nil {
		t.metrics.started(t.procedure(r.Procedure), r.Protocol)
	}
	if t.tracing != nil {
		t.tracing.start(r, t.spanName(r.Procedure))
	}
}

// CallEnded implements outcome.Observer.
func (t *Telemetry) CallEnded(r *outcome.Record) {
	proc := 0 // the metrics' and the span's, not the log line's
	if t.metrics != nil || t.tracing != nil {
		proc = t.procedure(r.Procedure)
	}
	if t.metrics != nil {
		t.metrics.ended(proc, r)
	}
	traceID := ""
	if t.tracing != nil {
		traceID = t.tracing.end(r, proc > 0)
	}
	if traceID == "" {
		traceID = traceparentID(r.Header)
	}
	if !t.logs.write(r, traceID) && t.metrics != nil {
		t.metrics.droppedLine()
	}
}

// spanName is a procedure as OpenTelemetry names RPC spans
// ("pkg.Service/Method"), bounded like the metric labels.
func (t *Telemetry) spanName(path string) string {
	if i := t.procedures[path]; i > 0 {
		return path[1:]
	}
	return procedureUnknown
}

// StreamReset implements outcome.Observer.
func (t *Telemetry) StreamReset(byClient bool, code uint32) {
	if t.metrics != nil {
		t.metrics.reset(byClient, code)
	}
}

// StreamRefused implements outcome.Observer.
func (t *Telemetry) StreamRefused() {
	if t.metrics != nil {
		t.metrics.refused.Add(1)
	}
}

// GoAway implements outcome.Observer.
func (t *Telemetry) GoAway(code uint32, reason outcome.GoAwayReason) {
	if t.metrics != nil {
		t.metrics.goAway(code, reason)
	}
}

// PingTimeout implements outcome.Observer.
func (t *Telemetry) PingTimeout() {
	if t.metrics != nil {
		t.metrics.pingTimeouts.Add(1)
	}
}

// WriteTimeout implements outcome.Observer.
func (t *Telemetry) WriteTimeout() {
	if t.metrics != nil {
		t.metrics.writeTimeouts.Add(1)
	}
}

// ConnState is an http.Server's ConnState hook: it counts the open
// connections (HTTP/1.1 and HTTP/2 alike).
func (t *Telemetry) ConnState(_ net.Conn, state http.ConnState) {
	if t.metrics == nil {
		return
	}
	switch state {
	case http.StateNew:
		t.metrics.conns.Add(1)
	case http.StateClosed, http.StateHijacked:
		t.metrics.conns.Add(-1)
	}
}

// Shutdown says how many rejected-call lines were dropped since the last
// line that said so, and sends the spans still buffered, within ctx.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.logs.flushDropped(ctx, time.Now())
	var errs []error
	if t.tracing != nil {
		errs = append(errs, t.tracing.shutdown(ctx))
	}
	if t.metrics != nil {
		errs = append(errs, t.metrics.provider.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// traceparentID is the trace ID of a W3C traceparent header
// ("00-<trace id>-<parent id>-<flags>"), for the log line when no span
// is recorded; empty if there is none or it is malformed.
func traceparentID(h http.Header) string {
	vv := h["Traceparent"]
	if len(vv) == 0 {
		return ""
	}
	v := vv[0]
	if len(v) < 55 || v[2] != '-' || v[35] != '-' {
		return ""
	}
	id := v[3:35]
	if strings.Trim(id, "0123456789abcdef") != "" || id == "00000000000000000000000000000000" {
		return ""
	}
	return id
}
