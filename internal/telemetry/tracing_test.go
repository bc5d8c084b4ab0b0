package telemetry

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
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
// answered with status and its code set to code, and returns the span's
// attributes.
func traceCall(t *testing.T, tel *Telemetry, exp *tracetest.InMemoryExporter, req *http.Request, status int, code outcome.Code) (map[attribute.Key]attribute.Value, tracetest.SpanStub) {
	t.Helper()
	exp.Reset()
	r := &outcome.Record{}
	start := time.Now()
	r.Begin(req, start)
	tel.CallStarted(r)
	r.Finish(start.Add(time.Millisecond), status, http.Header{}, outcome.EndSent, outcome.CodeOK)
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
		attrs, _ := traceCall(t, tel, exp, tc.req, http.StatusOK, outcome.CodeOK)
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

// A server span's status is Error only for the codes OpenTelemetry's gRPC
// and Connect conventions name for a server (unknown, deadline_exceeded,
// unimplemented, internal, unavailable, data_loss), and for a request in
// no RPC protocol only for a 5xx status; otherwise it is unset, the code
// still in its attribute.
func TestSpanStatusFollowsServerConventions(t *testing.T) {
	t.Parallel()
	tel, exp := tracedTelemetry(t)
	const path = "/teams.v1.TeamsService/GetTeam"
	serverFaults := map[outcome.Code]bool{
		outcome.CodeUnknown: true, outcome.CodeDeadlineExceeded: true, outcome.CodeUnimplemented: true,
		outcome.CodeInternal: true, outcome.CodeUnavailable: true, outcome.CodeDataLoss: true,
	}
	for _, contentType := range []string{"application/grpc", "application/proto"} {
		for code := range outcome.Code(outcome.NumCodes) {
			attrs, span := traceCall(t, tel, exp, request(http.MethodPost, path, contentType), http.StatusOK, code)
			want := codes.Unset
			if serverFaults[code] {
				want = codes.Error
			}
			if span.Status.Code != want {
				t.Errorf("%s, %s: span status %v, want %v", contentType, code, span.Status.Code, want)
			}
			if got := attrs["rpc.grpc.status_code"]; contentType == "application/grpc" && got.AsInt64() != int64(code) {
				t.Errorf("%s, %s: rpc.grpc.status_code %d", contentType, code, got.AsInt64())
			}
			if got := attrs["rpc.connect_rpc.error_code"]; contentType == "application/proto" && code != outcome.CodeOK && got.AsString() != code.String() {
				t.Errorf("%s, %s: rpc.connect_rpc.error_code %q", contentType, code, got.AsString())
			}
		}
	}
	for _, tc := range []struct {
		status int
		code   outcome.Code
		want   codes.Code
	}{
		{http.StatusNotFound, outcome.CodeUnimplemented, codes.Unset},
		{http.StatusMethodNotAllowed, outcome.CodeUnknown, codes.Unset},
		{http.StatusServiceUnavailable, outcome.CodeUnavailable, codes.Error},
	} {
		_, span := traceCall(t, tel, exp, request(http.MethodGet, "/wp-admin/setup-config.php", ""), tc.status, tc.code)
		if span.Status.Code != tc.want {
			t.Errorf("page answered %d: span status %v, want %v", tc.status, span.Status.Code, tc.want)
		}
	}
}

// The peer's address and port are network.peer.address and
// network.peer.port, an IPv6 address without its brackets; a bare
// address (a trusted proxy's client, forwarded without a port) is the
// address alone.
func TestSpanPeerAddressAndPort(t *testing.T) {
	t.Parallel()
	tel, exp := tracedTelemetry(t)
	for _, tc := range []struct {
		peer, addr string
		port       int64 // 0: none
	}{
		{"192.0.2.1:5000", "192.0.2.1", 5000},
		{"[2001:db8::1]:443", "2001:db8::1", 443},
		{"2001:db8::1", "2001:db8::1", 0},
		{"192.0.2.7", "192.0.2.7", 0},
	} {
		req := request(http.MethodPost, "/teams.v1.TeamsService/GetTeam", "application/grpc")
		req.RemoteAddr = tc.peer
		attrs, _ := traceCall(t, tel, exp, req, http.StatusOK, outcome.CodeOK)
		if got := attrs["network.peer.address"].AsString(); got != tc.addr {
			t.Errorf("peer %s: network.peer.address %q, want %q", tc.peer, got, tc.addr)
		}
		port, ok := attrs["network.peer.port"]
		if (tc.port == 0 && ok) || port.AsInt64() != tc.port {
			t.Errorf("peer %s: network.peer.port %v (set: %v), want %d", tc.peer, port.AsInt64(), ok, tc.port)
		}
	}
}

// A call that ended before any response reached its client (its record's
// HTTP status 0) shows no HTTP status: neither its log line, in either
// format, nor its span (http.response.status_code is set only when a
// response was sent).
func TestUnansweredCallShowsNoStatus(t *testing.T) {
	unanswered := func() *outcome.Record {
		r := &outcome.Record{}
		start := time.Now()
		r.Begin(request(http.MethodPost, "/teams.v1.TeamsService/GetTeam", "application/grpc"), start)
		r.Finish(start.Add(time.Millisecond), 0, http.Header{}, outcome.EndClientReset, outcome.CodeCanceled)
		return r
	}
	var text, js bytes.Buffer
	for _, h := range []slog.Handler{NewTextHandler(&text, nil), slog.NewJSONHandler(&js, nil)} {
		tel, err := New(Options{Logger: slog.New(h)})
		if err != nil {
			t.Fatal(err)
		}
		tel.CallEnded(unanswered())
	}
	for _, line := range []string{text.String(), js.String()} {
		if !strings.Contains(line, "client_reset") || strings.Contains(line, "http_status") {
			t.Errorf("the line of a call never answered: %s; want no http_status", line)
		}
	}
	tel, exp := tracedTelemetry(t)
	r := unanswered()
	tel.CallStarted(r)
	tel.CallEnded(r)
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans for one call", len(spans))
	}
	for _, kv := range spans[0].Attributes {
		if kv.Key == "http.response.status_code" {
			t.Errorf("the span of a call never answered has %s=%v", kv.Key, kv.Value.Emit())
		}
	}
}
