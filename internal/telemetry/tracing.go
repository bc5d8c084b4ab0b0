package telemetry

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/internal/outcome"
)

// Tracing exports one server span per call, over OTLP/HTTP (protobuf;
// otlpExporter), to
// the collector the standard OTEL_EXPORTER_OTLP_* variables name. The
// sampler is the SDK's, set by OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG; unset, it is parentbased_always_on. A W3C
// traceparent header makes the call's span a child of the caller's, and
// under a parentbased_* sampler the caller's sampled flag decides.
type Tracing struct {
	provider   *sdktrace.TracerProvider
	spans      *spanCounts // nil when the spans go elsewhere than OTLP (tests)
	endpoint   string      // where they go, for errors
	tracer     trace.Tracer
	propagator propagation.TraceContext
	startOpts  []trace.SpanStartOption // made once: options passed to Start escape
}

// TracingFromEnv configures tracing from the standard OpenTelemetry
// variables, or returns nil when they leave it off: tracing is on only
// when OTEL_TRACES_EXPORTER is "otlp" and OTEL_SDK_DISABLED is not
// "true". Only the http/protobuf OTLP protocol is served (so grpc-go is
// not linked into the server).
func TracingFromEnv(ctx context.Context, getenv func(string) string) (*Tracing, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return nil, nil
	}
	// The specification's enumerated values are case-insensitive.
	switch exporter := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); exporter {
	case "", "none":
		return nil, nil
	case "otlp":
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: switchyard exports traces with \"otlp\" (or \"none\")", exporter)
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		p := getenv(name)
		if p == "" {
			continue // the general variable, or the default
		}
		if !strings.EqualFold(strings.TrimSpace(p), "http/protobuf") {
			return nil, fmt.Errorf("%s=%q: switchyard exports OTLP over http/protobuf only", name, p)
		}
		break
	}
	exp, err := newOTLPExporter(getenv)
	if err != nil {
		return nil, err
	}
	res, err := traceResource(ctx, getenv)
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	sampler, err := samplerFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	// The batch processor's queue is bounded here, where a span that
	// finds it full is counted: the processor's own bound, no smaller,
	// then never drops one unseen.
	queue := sdktrace.DefaultMaxQueueSize
	if n, err := strconv.Atoi(getenv("OTEL_BSP_MAX_QUEUE_SIZE")); err == nil && n > 0 {
		queue = n
	}
	exp.spans = &spanCounts{max: int64(queue)}
	bsp := sdktrace.NewBatchSpanProcessor(exp, sdktrace.WithMaxQueueSize(queue))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(countingProcessor{bsp, exp.spans}),
		sdktrace.WithResource(res), sdktrace.WithSampler(sampler))
	return &Tracing{provider: tp, spans: exp.spans, endpoint: exp.shown, tracer: tp.Tracer("github.com/switchyard/switchyard/internal/telemetry"),
		startOpts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}}, nil
}

// spanCounts follows the spans on their way to the collector, for the
// metrics and for the shutdown's error.
type spanCounts struct {
	max       int64        // spans queued at most
	queued    atomic.Int64 // ended, not yet handed to the exporter
	exporting atomic.Int64 // in an export under way
	exported  atomic.Int64
	// dropped: the queue was full; the collector refused them or did
	// not take them within the export timeout
	queueFull, exportFailed atomic.Int64
}

// countingProcessor is the batch processor behind a queue bound of its
// own, which counts the spans it drops.
type countingProcessor struct {
	sdktrace.SpanProcessor
	spans *spanCounts
}

func (p countingProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return // the batch processor exports only sampled spans
	}
	if p.spans.queued.Add(1) > p.spans.max {
		p.spans.queued.Add(-1)
		p.spans.queueFull.Add(1)
		return
	}
	p.SpanProcessor.OnEnd(s)
}

// samplerFromEnv is the sampler OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG name, as the SDK reads them (read here so that
// getenv decides, as it does for the rest): parentbased_always_on when
// unset.
func samplerFromEnv(getenv func(string) string) (sdktrace.Sampler, error) {
	name := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER")))
	arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio from 0 to 1", arg)
		}
		return r, nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		if name == "traceidratio" {
			return sdktrace.TraceIDRatioBased(r), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: want always_on, always_off, traceidratio or a parentbased_ one of them", name)
}

// traceResource is the spans' resource: OTEL_RESOURCE_ATTRIBUTES and the
// SDK's attributes, with service.name as the specification orders it:
// OTEL_SERVICE_NAME, else the one OTEL_RESOURCE_ATTRIBUTES names, else
// "switchyard". Of the detectors, each later one overrides the earlier.
func traceResource(ctx context.Context, getenv func(string) string) (*resource.Resource, error) {
	opts := []resource.Option{
		resource.WithAttributes(attribute.String("service.name", "switchyard")),
		resource.WithFromEnv(), // both variables, OTEL_SERVICE_NAME winning
		resource.WithTelemetrySDK(),
	}
	// WithFromEnv reads the process's environment: getenv's name, where
	// getenv is not os.Getenv, still wins.
	if name := getenv("OTEL_SERVICE_NAME"); name != "" {
		opts = append(opts, resource.WithAttributes(attribute.String("service.name", name)))
	}
	return resource.New(ctx, opts...)
}

// start opens the call's span, under the caller's when its traceparent
// names one, and keeps it in the record.
func (t *Tracing) start(r *outcome.Record, name string) {
	ctx := context.Background()
	if len(r.Header["Traceparent"]) > 0 {
		ctx = t.propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	// The span starts now, microseconds after r.Start: a start timestamp
	// option would cost an allocation per call, sampled or not.
	_, span := t.tracer.Start(ctx, name, t.startOpts...)
	r.Span = span
}

// end closes the call's span with what the record says, and returns its
// trace ID for the log line: "" when the span is not recorded (the caller's
// traceparent, if any, still names the trace in the log line). served
// says whether the record's path is a served procedure.
func (t *Tracing) end(r *outcome.Record, served bool) string {
	span, ok := r.Span.(trace.Span)
	if !ok {
		return ""
	}
	if !span.IsRecording() {
		return ""
	}
	sc := span.SpanContext()
	// One SetAttributes: each call takes the span's lock and may grow its
	// attribute slice.
	attrs := make([]attribute.KeyValue, 0, 16)
	// A request in no RPC protocol (a page, a preflight, a probe of
	// /wp-admin) is no RPC: it gets no rpc.* attribute.
	system := ""
	switch r.Protocol {
	case outcome.ProtocolGRPC, outcome.ProtocolGRPCWeb:
		system = "grpc"
		attrs = append(attrs, attribute.Int("rpc.grpc.status_code", int(r.Code)))
	case outcome.ProtocolConnect:
		system = "connect_rpc"
		if r.Code != outcome.CodeOK {
			attrs = append(attrs, attribute.String("rpc.connect_rpc.error_code", r.Code.String()))
		}
	}
	if system != "" {
		attrs = append(attrs, attribute.String("rpc.system", system))
	}
	if served && system != "" {
		service, method := splitProcedure(r.Procedure)
		attrs = append(attrs, attribute.String("rpc.service", service), attribute.String("rpc.method", method))
	} else if !served {
		// Whatever the client sent, bounded, and valid UTF-8 as OTLP's
		// strings must be: the span is named "unknown", and this says
		// what was asked for.
		attrs = append(attrs, attribute.String("url.path", validUTF8(outcome.Cut(r.Procedure, maxLoggedPath))))
	}
	attrs = append(attrs,
		attribute.String("switchyard.protocol", r.Protocol.String()),
		attribute.String("switchyard.code", r.Code.String()),
		attribute.String("switchyard.end", r.End.String()),
		attribute.Bool("switchyard.handled", r.Handled),
		attribute.Int64("switchyard.bytes.received", r.BytesIn),
		attribute.Int64("switchyard.bytes.sent", r.BytesOut),
		attribute.Int64("switchyard.messages.received", r.MsgsIn),
		attribute.Int64("switchyard.messages.sent", r.MsgsOut),
	)
	if r.HTTPStatus != 0 { // 0: no response reached the client
		attrs = append(attrs, attribute.Int("http.response.status_code", r.HTTPStatus))
	}
	if addr, port, ok := splitPeer(r.Peer); ok {
		attrs = append(attrs, attribute.String("network.peer.address", addr), attribute.Int("network.peer.port", port))
	} else {
		attrs = append(attrs, attribute.String("network.peer.address", r.Peer))
	}
	span.SetAttributes(attrs...)
	if failed(r) {
		span.SetStatus(codes.Error, r.Message)
	}
	span.End(trace.WithTimestamp(r.Start.Add(r.Duration)))
	return sc.TraceID().String()
}

// failed says whether a call's server span has status Error, as
// OpenTelemetry's conventions for server spans say. An RPC (gRPC's and
// Connect's conventions name the same codes) failed only with a code that
// says the server did: the rest (not_found, invalid_argument, canceled,
// ...) are the caller's, and stay in rpc.grpc.status_code or
// rpc.connect_rpc.error_code, with the span's status unset. A request in
// no RPC protocol failed, as HTTP's conventions say, with a 5xx status.
func failed(r *outcome.Record) bool {
	if r.Protocol == outcome.ProtocolHTTP {
		return r.HTTPStatus >= 500
	}
	switch r.Code {
	case outcome.CodeUnknown, outcome.CodeDeadlineExceeded, outcome.CodeUnimplemented,
		outcome.CodeInternal, outcome.CodeUnavailable, outcome.CodeDataLoss:
		return true
	}
	return false
}

// shutdown sends the spans still queued, within ctx; its error counts
// those it could not send.
func (t *Tracing) shutdown(ctx context.Context) error {
	err := t.provider.Shutdown(ctx)
	if err != nil && t.spans != nil {
		if n := t.spans.queued.Load() + t.spans.exporting.Load(); n > 0 {
			err = fmt.Errorf("%d spans not sent to %s: %w", n, t.endpoint, err)
		}
	}
	return err
}

// splitPeer splits a record's peer, "192.0.2.1:5000" or "[2001:db8::1]:5000"
// (a connection's address), into its address and port; not ok for a bare
// address (what a trusted proxy's forwarded client is, with no port).
func splitPeer(peer string) (addr string, port int, ok bool) {
	host, p, err := net.SplitHostPort(peer)
	if err != nil {
		return "", 0, false
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, false
	}
	return host, int(n), true
}

// splitProcedure splits "/pkg.Service/Method".
func splitProcedure(p string) (service, method string) {
	p = strings.TrimPrefix(p, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i], p[i+1:]
	}
	return p, ""
}

// Tracer is the tracer of child spans (the store's), or a no-op one.
func (t *Tracing) Tracer() trace.Tracer {
	return t.tracer
}
