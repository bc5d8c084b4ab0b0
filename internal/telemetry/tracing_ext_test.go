package telemetry_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/telemetry"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// otlpReceiver is an in-process OTLP/HTTP trace collector: it decodes
// what arrives at /v1/traces as the OTLP protobuf (TracesData is
// wire-identical to ExportTraceServiceRequest).
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want POST /v1/traces of application/x-protobuf", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	var data tracepb.TracesData
	if err := proto.Unmarshal(body, &data); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range data.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
}

func (r *otlpReceiver) received() []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...)
}

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestTracingFollowsTraceparent: with OTEL_TRACES_EXPORTER=otlp and the
// endpoint of an in-process OTLP/HTTP receiver, a call that carries a W3C
// traceparent yields a server span in the caller's trace, child of the
// caller's span, with the team store's query as its child; and the call's
// log line carries the trace ID.
func TestTracingFollowsTraceparent(t *testing.T) {
	receiver := &otlpReceiver{}
	collector := httptest.NewServer(receiver)
	defer collector.Close()
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_TRACES_SAMPLER", "")
	t.Setenv("OTEL_SDK_DISABLED", "")
	tracing, err := telemetry.TracingFromEnv(context.Background(), nil)
	if err != nil || tracing == nil {
		t.Fatalf("tracing from the environment: %v, %v", tracing, err)
	}
	var logs syncBuffer
	tel, err := telemetry.New(telemetry.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Tracing: tracing})
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlstore.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv := testserver.Start(t, server.Config{Telemetry: tel, Teams: store})

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	client := teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL, connect.WithGRPC())
	req := connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"})
	req.Header().Set("Traceparent", "00-"+traceID+"-"+parentID+"-01")
	if _, err := client.GetTeam(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	// Without a traceparent, the call starts a trace of its own.
	if _, err := client.GetTeam(context.Background(), connect.NewRequest(&teamsv1.GetTeamRequest{City: "Detroit"})); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the records end after the responses
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil { // flushes the batch
		t.Fatal(err)
	}

	var server, query *tracepb.Span
	roots := 0
	for _, s := range receiver.received() {
		switch {
		case s.GetName() == "teams.v1.TeamsService/GetTeam" && hex.EncodeToString(s.GetTraceId()) == traceID:
			server = s
		case s.GetName() == "teams.v1.TeamsService/GetTeam" && len(s.GetParentSpanId()) == 0:
			roots++
		}
	}
	if server == nil {
		t.Fatalf("no GetTeam span in trace %s among %d spans received", traceID, len(receiver.received()))
	}
	if got := hex.EncodeToString(server.GetParentSpanId()); got != parentID {
		t.Errorf("server span's parent %s, want the traceparent's %s", got, parentID)
	}
	if server.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("server span kind %v", server.GetKind())
	}
	for _, s := range receiver.received() {
		if s.GetName() == "teams.Store/Get" && bytes.Equal(s.GetParentSpanId(), server.GetSpanId()) {
			query = s
		}
	}
	if query == nil {
		t.Error("no teams.Store/Get span under the call's span")
	}
	if roots != 1 {
		t.Errorf("%d root GetTeam spans for the call without traceparent, want 1", roots)
	}

	found := false
	for line := range strings.SplitSeq(logs.String(), "\n") {
		var fields map[string]any
		if json.Unmarshal([]byte(line), &fields) != nil {
			continue
		}
		if fields["msg"] == "rpc" && fields["trace_id"] == traceID && fields["procedure"] == teamsv1connect.TeamsServiceGetTeamProcedure {
			found = true
		}
	}
	if !found {
		t.Errorf("no rpc log line with trace_id %s:\n%s", traceID, logs.String())
	}
}

// TestTracingOffByDefault: without OTEL_TRACES_EXPORTER=otlp there is no
// tracing; other exporters and the gRPC protocol are refused by name.
func TestTracingOffByDefault(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if tr, err := telemetry.TracingFromEnv(context.Background(), getenv); tr != nil || err != nil {
		t.Errorf("no variables: %v, %v; want off", tr, err)
	}
	env["OTEL_TRACES_EXPORTER"] = "zipkin"
	if _, err := telemetry.TracingFromEnv(context.Background(), getenv); err == nil || !strings.Contains(err.Error(), "OTEL_TRACES_EXPORTER") {
		t.Errorf("zipkin: %v", err)
	}
	env["OTEL_TRACES_EXPORTER"] = "otlp"
	env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
	if _, err := telemetry.TracingFromEnv(context.Background(), getenv); err == nil || !strings.Contains(err.Error(), "http/protobuf") {
		t.Errorf("grpc protocol: %v", err)
	}
	env["OTEL_SDK_DISABLED"] = "true"
	if tr, err := telemetry.TracingFromEnv(context.Background(), getenv); tr != nil || err != nil {
		t.Errorf("OTEL_SDK_DISABLED: %v, %v; want off", tr, err)
	}
	// The specification's enumerated values are case-insensitive.
	env = map[string]string{"OTEL_TRACES_EXPORTER": "OTLP", "OTEL_EXPORTER_OTLP_PROTOCOL": "HTTP/Protobuf", "OTEL_TRACES_SAMPLER": "Always_On"}
	tr, err := telemetry.TracingFromEnv(context.Background(), getenv)
	if tr == nil || err != nil {
		t.Fatalf("%v: %v, %v; want tracing on", env, tr, err)
	}
	tel, err := telemetry.New(telemetry.Options{Logger: slog.New(slog.DiscardHandler), Tracing: tr})
	if err != nil {
		t.Fatal(err)
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// Without tracing, a call's log line still names the trace of the
// traceparent it carried, so logs and the caller's trace join up.
func TestLogLineCarriesTraceparentWithoutTracing(t *testing.T) {
	var logs syncBuffer
	tel, err := telemetry.New(telemetry.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.Start(t, server.Config{Telemetry: tel})
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	for _, p := range testserver.Protocols() {
		client := teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL, p.Opts...)
		req := connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"})
		req.Header().Set("Traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
		if _, err := client.GetTeam(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	want := len(testserver.Protocols())
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Count(logs.String(), `"trace_id":"`+traceID+`"`) == want {
			return
		}
	}
	t.Errorf("want %d rpc lines with trace_id %s:\n%s", want, traceID, logs.String())
}
