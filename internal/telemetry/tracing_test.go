package telemetry

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/internal/outcome"
)

// tracedTelemetry is a Telemetry serving GetTeam whose spans, all
// sampled, end up in the exporter returned.
func tracedTelemetry(t *testing.T) (*Telemetry, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	tel, err := New(Options{Logger: slog.New(slog.DiscardHandler), Tracing: &Tracing{
		provider: tp, tracer: tp.Tracer("test"), startOpts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}}})
	if err != nil {
		t.Fatal(err)
	}
	tel.ServeProcedures([]string{"/teams.v1.TeamsService/GetTeam"})
	return tel, exp
}

// traceCall passes the record of a request to tel as the transport would,
// its code set to code, and returns the span's attributes.
func traceCall(t *testing.T, tel *Telemetry, exp *tracetest.InMemoryExporter, req *http.Request, code outcome.Code) (map[attribute.Key]attribute.Value, tracetest.SpanStub) {
	t.Helper()
	exp.Reset()
	r := &outcome.Record{}
	start := time.Now()
	r.Begin(req, start)
	tel.CallStarted(r)
	r.Finish(start.Add(time.Millisecond), http.StatusOK, http.Header{}, outcome.EndSent, outcome.CodeOK)
	r.Code = code
	tel.CallEnded(r)
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans for one call", len(spans))
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range spans[0].Attributes {
		attrs[kv.Key] = kv.Value
	}
	return attrs, spans[0]
}

func request(method, path, contentType string) *http.Request {
	req := httptest.NewRequest(method, "/", nil)
	req.URL.Path = path // as the server decoded it, whatever its bytes
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req
}

// Only an RPC of a served procedure names its service and method; a path
// that is none (however long, whatever its bytes) is in url.path, cut on
// a rune and made valid UTF-8; a request in no RPC protocol (a page, a
// probe) carries no rpc.* attribute at all.
func TestSpanNamesOnlyServedProcedures(t *testing.T) {
	t.Parallel()
	tel, exp := tracedTelemetry(t)
	long := "/" + strings.Repeat("é", 200)
	for _, tc := range []struct {
		name                    string
		req                     *http.Request
		system, service, method string // "" for none
		path                    string // url.path, "" for none
	}{
		{"served gRPC", request(http.MethodPost, "/teams.v1.TeamsService/GetTeam", "application/grpc"),
			"grpc", "teams.v1.TeamsService", "GetTeam", ""},
		{"served Connect", request(http.MethodPost, "/teams.v1.TeamsService/GetTeam", "application/proto"),
			"connect_rpc", "teams.v1.TeamsService", "GetTeam", ""},
		{"unknown procedure", request(http.MethodPost, "/teams.v1.TeamsService/Nope", "application/grpc"),
			"grpc", "", "", "/teams.v1.TeamsService/Nope"},
		{"path not UTF-8", request(http.MethodPost, "/\xff\xfe/x", "application/grpc"),
			"grpc", "", "", "/\uFFFD/x"},
		{"long path", request(http.MethodPost, long, "application/grpc"),
			"grpc", "", "", long[:255]},
		{"page", request(http.MethodGet, "/wp-admin/setup-config.php", ""),
			"", "", "", "/wp-admin/setup-config.php"},
		{"preflight of a procedure", request(http.MethodOptions, "/teams.v1.TeamsService/GetTeam", ""),
			"", "", "", ""},
	} {
		attrs, _ := traceCall(t, tel, exp, tc.req, outcome.CodeOK)
		for key, want := range map[attribute.Key]string{"rpc.system": tc.system, "rpc.service": tc.service, "rpc.method": tc.method, "url.path": tc.path} {
			got, ok := attrs[key]
			switch {
			case want == "" && ok:
				t.Errorf("%s: %s = %q, want none", tc.name, key, got.AsString())
			case want != "" && got.AsString() != want:
				t.Errorf("%s: %s = %q, want %q", tc.name, key, got.AsString(), want)
			}
			if ok && !utf8.ValidString(got.AsString()) {
				t.Errorf("%s: %s = %q is not UTF-8", tc.name, key, got.AsString())
			}
		}
	}
}

// service.name is OTEL_SERVICE_NAME, else the one OTEL_RESOURCE_ATTRIBUTES
// names, else "switchyard", as the specification orders them; the other
// resource attributes stay.
func TestTraceResourceServiceName(t *testing.T) {
	for _, tc := range []struct {
		serviceName, attributes string
		want                    string
	}{
		{"billing", "service.name=orders,deployment.environment=prod", "billing"},
		{"", "service.name=orders,deployment.environment=prod", "orders"},
		{"", "deployment.environment=prod", "switchyard"},
	} {
		t.Setenv("OTEL_SERVICE_NAME", tc.serviceName)
		t.Setenv("OTEL_RESOURCE_ATTRIBUTES", tc.attributes)
		res, err := traceResource(t.Context(), os.Getenv)
		if err != nil {
			t.Fatal(err)
		}
		set := res.Set()
		if got, _ := set.Value("service.name"); got.AsString() != tc.want {
			t.Errorf("OTEL_SERVICE_NAME=%q OTEL_RESOURCE_ATTRIBUTES=%q: service.name %q, want %q", tc.serviceName, tc.attributes, got.AsString(), tc.want)
		}
		if got, _ := set.Value("deployment.environment"); got.AsString() != "prod" {
			t.Errorf("OTEL_RESOURCE_ATTRIBUTES=%q: deployment.environment %q, want prod", tc.attributes, got.AsString())
		}
	}
}
