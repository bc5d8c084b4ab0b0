package telemetry

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/internal/outcome"
)

// Sampling of the lines of calls rejected before a handler: a client that
// floods the port with garbage must not be able to stall the log writer
// (and with it every call that logs). Up to rejectedBurst such lines go
// out at once, then rejectedPerSecond; the rest are dropped, counted in
// switchyard_log_rejected_lines_dropped_total and summed up in a line
// when lines flow again, which the sample allows as it allows theirs.
// Calls that reached a handler are never sampled: their rate is bounded
// by the handlers' own work.
const (
	rejectedBurst     = 100
	rejectedPerSecond = 20
)

// maxLoggedPath bounds the procedure attribute of a line: the path of a
// rejected call is whatever the client sent.
const maxLoggedPath = 256

// logSink writes one line per record.
type logSink struct {
	h slog.Handler
	// text, when the configured handler is a TextHandler, writes the call
	// lines without slog's attribute walk (textline.go).
	text *TextHandler

	mu     sync.Mutex
	tokens float64
	last   time.Time
	// dropped counts the lines dropped since the last summary line: the
	// next rejected call's line that the sample lets out writes it first,
	// and so does a handled call's when the sample has a line to spare,
	// so a handled call's path reads it without the lock.
	dropped atomic.Int64
}

func newLogSink(h slog.Handler) *logSink {
	return &logSink{h: h, tokens: rejectedBurst}
}

// write logs r, unless sampling drops it (reported false).
func (l *logSink) write(r *outcome.Record, traceID string) bool {
	level := slog.LevelInfo
	if r.Code != outcome.CodeOK || r.End != outcome.EndSent {
		level = slog.LevelWarn
	}
	ctx := context.Background()
	if !l.h.Enabled(ctx, level) {
		return true
	}
	now := r.Start.Add(r.Duration) // the call's end, without another clock read
	if !r.Handled && !l.admit(now) {
		return false
	}
	// A rejected line's token pays for its summary too; a handled line,
	// which took none, writes one only when the sample has one to spare:
	// else, during a flood, every handled line would bring one.
	if !r.Handled || l.dropped.Load() != 0 && l.take(now) {
		l.flushDropped(ctx, now)
	}
	procedure := r.Procedure
	if len(procedure) > maxLoggedPath {
		procedure = outcome.Cut(procedure, maxLoggedPath) + "..."
	}
	if l.text != nil {
		l.text.writeCallLine(now, level, r, procedure, traceID)
		return true
	}
	// The record goes to the handler directly: Logger.LogAttrs would also
	// walk the stack for the caller's PC (runtime.Callers, ~2% of a unary
	// call), which these lines never show: the procedure says where.
	line := slog.NewRecord(now, level, "rpc", 0)
	// The attributes, their order and their formats are also
	// appendCallLine's: a test holds the two to the same bytes.
	line.AddAttrs(
		slog.String("procedure", procedure),
		slog.String("protocol", r.Protocol.String()),
		slog.String("code", r.Code.String()),
		slog.Duration("duration", r.Duration),
		slog.String("peer", r.Peer),
		slog.String("user_agent", r.UserAgent),
	)
	if md := metadataOf(r.Header); md != nil {
		line.AddAttrs(slog.Attr{Key: "metadata", Value: slog.GroupValue(md...)})
	}
	if r.End != outcome.EndSent {
		line.AddAttrs(slog.String("end", r.End.String()))
	}
	if !r.Handled && r.HTTPStatus != 0 { // 0: no response reached the client
		line.AddAttrs(slog.Int("http_status", r.HTTPStatus))
	}
	if r.Code != outcome.CodeOK && r.Message != "" {
		line.AddAttrs(slog.String("error", r.Message))
	}
	if traceID != "" {
		line.AddAttrs(slog.String("trace_id", traceID))
	}
	_ = l.h.Handle(ctx, line)
	return true
}

// admit takes a token for a rejected call's line, or counts the line
// dropped.
func (l *logSink) admit(now time.Time) bool {
	if l.take(now) {
		return true
	}
	l.dropped.Add(1)
	return false
}

// take takes a token for a sampled line, if there is one.
func (l *logSink) take(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Calls end out of order: an end before the latest one refills
	// nothing (and takes nothing back).
	if l.last.IsZero() {
		l.last = now
	} else if d := now.Sub(l.last); d > 0 {
		l.tokens = min(rejectedBurst, l.tokens+d.Seconds()*rejectedPerSecond)
		l.last = now
	}
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// flushDropped writes the line that says how many lines were dropped
// since the last such line, if any were: before the next call's line
// that the sample lets it precede, and at shutdown, so that the
// summaries add up to switchyard_log_rejected_lines_dropped_total.
func (l *logSink) flushDropped(ctx context.Context, now time.Time) {
	if l.dropped.Load() == 0 { // a call's common case: no write to share
		return
	}
	if n := l.dropped.Swap(0); n > 0 {
		s := slog.NewRecord(now, slog.LevelWarn, "rejected-call log lines dropped under load; their calls are counted in the metrics", 0)
		s.AddAttrs(slog.Int64("dropped", n))
		_ = l.h.Handle(ctx, s)
	}
}

// traceHandler adds the trace and span IDs of a line's context, when it
// carries a span, to every line: a handler's log lines then join its
// call's trace.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// ErrorLog is the logger for net/http's server (http.Server.ErrorLog),
// whose lines it writes through the configured logger. TLS handshake
// failures, one per connection that a client, a scanner or a load
// balancer's TCP check opens and breaks off (as fast as any client can
// connect), are WARN lines sampled as the lines of rejected calls are,
// and dropped ones are counted with theirs. Every other line is written:
// a handler's panic (ERROR, internal/h2's or net/http's), an accept
// error, which no client can make in numbers.
func (t *Telemetry) ErrorLog() *log.Logger {
	return log.New(errorLogWriter{t}, "", 0)
}

// tlsHandshakeLine begins net/http's line of a failed TLS handshake.
const tlsHandshakeLine = "http: TLS handshake error"

type errorLogWriter struct{ t *Telemetry }

func (w errorLogWriter) Write(p []byte) (int, error) {
	l := w.t.logs
	ctx := context.Background()
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelWarn
	if strings.Contains(msg, "panic serving") {
		level = slog.LevelError
	}
	if !l.h.Enabled(ctx, level) {
		return len(p), nil
	}
	now := time.Now()
	if strings.HasPrefix(msg, tlsHandshakeLine) && !l.admit(now) {
		if w.t.metrics != nil {
			w.t.metrics.droppedLine()
		}
		return len(p), nil
	}
	l.flushDropped(ctx, now)
	_ = l.h.Handle(ctx, slog.NewRecord(now, level, msg, 0))
	return len(p), nil
}
