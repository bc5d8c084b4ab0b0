package telemetry

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
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

// collectorExporter is an exporter to a collector that takes every
// export, until the test ends.
func collectorExporter(t *testing.T) (*otlpExporter, *flakyCollector) {
	t.Helper()
	c := &flakyCollector{}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	e, err := newOTLPExporter(func(name string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": srv.URL + "/v1/traces"}[name]
	})
	if err != nil {
		t.Fatal(err)
	}
	return e, c
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

// Every kind of attribute value reaches the collector as the AnyValue
// OTLP has for it, nested values included: bytes stay bytes, a map is a
// kvlist, an empty value sets nothing; none is flattened into a string.
func TestOTLPExportEveryAttributeKind(t *testing.T) {
	t.Parallel()
	str := func(s string) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
	}
	integer := func(n int64) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: n}}
	}
	array := func(vs ...*commonpb.AnyValue) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: vs}}}
	}
	cases := []struct {
		attr attribute.KeyValue
		want *commonpb.AnyValue
	}{
		{attribute.Bool("bool", true), &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}},
		{attribute.Int64("int", -7), integer(-7)},
		{attribute.Float64("float", 2.5), &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 2.5}}},
		{attribute.String("string", "Chicago"), str("Chicago")},
		{attribute.BoolSlice("bools", []bool{true, false}), array(
			&commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}},
			&commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: false}})},
		{attribute.Int64Slice("ints", []int64{1, 2}), array(integer(1), integer(2))},
		{attribute.Float64Slice("floats", []float64{0.5}), array(&commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.5}})},
		{attribute.StringSlice("strings", []string{"a", "b"}), array(str("a"), str("b"))},
		{attribute.StringSlice("no strings", nil), array()},
		{attribute.ByteSlice("bytes", []byte{0, 0xff}), &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0, 0xff}}}},
		{attribute.Slice("values", attribute.StringValue("x"), attribute.Int64SliceValue([]int64{3})), array(str("x"), array(integer(3)))},
		{attribute.Map("map", attribute.String("city", "Chicago"), attribute.Int("members", 2)),
			&commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{
				{Key: "city", Value: str("Chicago")}, {Key: "members", Value: integer(2)}}}}}},
		{attribute.KeyValue{Key: "empty"}, &commonpb.AnyValue{}},
	}
	var attrs []attribute.KeyValue
	for _, c := range cases {
		attrs = append(attrs, c.attr)
	}
	e, c := collectorExporter(t)
	span := tracetest.SpanStub{Name: "GetTeam", Attributes: attrs}.Snapshot()
	if err := e.ExportSpans(context.Background(), []sdktrace.ReadOnlySpan{span}); err != nil {
		t.Fatal(err)
	}
	bodies := c.received()
	if len(bodies) != 1 {
		t.Fatalf("%d exports arrived, want 1", len(bodies))
	}
	var got tracepb.TracesData
	if err := proto.Unmarshal(bodies[0], &got); err != nil {
		t.Fatalf("the export does not decode as OTLP: %v", err)
	}
	if n := len(got.GetResourceSpans()); n != 1 || len(got.ResourceSpans[0].GetScopeSpans()) != 1 || len(got.ResourceSpans[0].ScopeSpans[0].GetSpans()) != 1 {
		t.Fatalf("the export holds not one span: %v", &got)
	}
	sent := got.ResourceSpans[0].ScopeSpans[0].Spans[0].GetAttributes()
	if len(sent) != len(cases) {
		t.Fatalf("%d attributes arrived, want %d: %v", len(sent), len(cases), sent)
	}
	for i, c := range cases {
		if sent[i].GetKey() != string(c.attr.Key) || !proto.Equal(sent[i].GetValue(), c.want) {
			t.Errorf("attribute %d arrived as %v = %v, want %s = %v", i, sent[i].GetKey(), sent[i].GetValue(), c.attr.Key, c.want)
		}
	}
}

// A span whose strings are not UTF-8 (a client's path, cut or not, a
// message) is sent with them made valid: protobuf refuses invalid UTF-8
// in a string field, and one such span failed the batch, the good spans
// in it included.
func TestOTLPExportMakesStringsUTF8(t *testing.T) {
	t.Parallel()
	e, c := collectorExporter(t)
	const bad = "/\xff\xfe/x"
	cut := strings.Repeat("é", 200)[:255] // cut inside the last 'é'
	good := tracetest.SpanStub{Name: "teams.v1.TeamsService/GetTeam"}.Snapshot()
	broken := tracetest.SpanStub{
		Name: bad,
		Attributes: []attribute.KeyValue{
			attribute.String("url.path", bad),
			attribute.String("cut", cut),
			attribute.StringSlice("paths", []string{bad}),
			attribute.String("key\xff", "v"),
		},
		Status: sdktrace.Status{Code: codes.Error, Description: "message \xc3"},
	}.Snapshot()
	if err := e.ExportSpans(context.Background(), []sdktrace.ReadOnlySpan{good, broken}); err != nil {
		t.Fatalf("export of a batch with invalid UTF-8: %v", err)
	}
	bodies := c.received()
	if len(bodies) != 1 {
		t.Fatalf("%d exports arrived, want 1", len(bodies))
	}
	var got tracepb.TracesData
	if err := proto.Unmarshal(bodies[0], &got); err != nil {
		t.Fatalf("the export does not decode as OTLP: %v", err)
	}
	spans := got.GetResourceSpans()[0].GetScopeSpans()[0].GetSpans()
	if len(spans) != 2 || spans[0].GetName() != "teams.v1.TeamsService/GetTeam" {
		t.Fatalf("the export holds %d spans, want the good one and the broken one: %v", len(spans), spans)
	}
	s := spans[1]
	if s.GetName() != "/\uFFFD/x" {
		t.Errorf("span name %q, want %q", s.GetName(), "/\uFFFD/x")
	}
	if msg := s.GetStatus().GetMessage(); msg != "message \uFFFD" {
		t.Errorf("status message %q, want %q", msg, "message \uFFFD")
	}
	attrs := s.GetAttributes()
	want := []struct{ key, value string }{
		{"url.path", "/\uFFFD/x"},
		{"cut", strings.Repeat("é", 127) + "\uFFFD"},
		{"paths", "/\uFFFD/x"},
		{"key\uFFFD", "v"},
	}
	if len(attrs) != len(want) {
		t.Fatalf("%d attributes arrived, want %d: %v", len(attrs), len(want), attrs)
	}
	for i, w := range want {
		v := attrs[i].GetValue()
		if arr := v.GetArrayValue(); arr != nil {
			v = arr.GetValues()[0]
		}
		if attrs[i].GetKey() != w.key || v.GetStringValue() != w.value {
			t.Errorf("attribute %d arrived as %q = %q, want %q = %q", i, attrs[i].GetKey(), v.GetStringValue(), w.key, w.value)
		}
	}
}

// A collector's password in the endpoint URL is in no error the exporter
// returns (they are logged): not in a refusal, not in a failed connection,
// not in a refused endpoint.
func TestOTLPErrorsHideEndpointPassword(t *testing.T) {
	t.Parallel()
	const password = "s3cret-pw"
	withPassword := func(base string) string {
		return strings.Replace(base, "http://", "http://collector:"+password+"@", 1) + "/v1/traces"
	}
	c := &flakyCollector{answers: []int{http.StatusUnauthorized}}
	srv := httptest.NewServer(c)
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	_ = ln.Close()
	for name, url := range map[string]string{"401": withPassword(srv.URL), "no connection": withPassword(closed)} {
		_, err := exportTo(t, url, "300")
		if err == nil || strings.Contains(err.Error(), password) {
			t.Errorf("%s: export error %v; want one without the password", name, err)
		}
	}
	for _, endpoint := range []string{"ftp://collector:" + password + "@otel:4318", "http://collector:" + password + "@otel:port"} {
		_, err := newOTLPExporter(func(name string) string {
			return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}[name]
		})
		if err == nil || strings.Contains(err.Error(), password) {
			t.Errorf("endpoint %s: %v; want an error without the password", endpoint, err)
		}
	}
}

// A variable the exporter refuses is named by the error, as the sampler's
// are (OTEL_TRACES_SAMPLER="bogus"): of the two that set each, the one a
// person has to fix, and the endpoint as it was given, not with the
// /v1/traces appended to it.
func TestOTLPErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, `OTEL_EXPORTER_OTLP_ENDPOINT="collector:4318": want an http:// or https:// URL`},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:4318/v1/traces"}, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="collector:4318/v1/traces": want an http:// or https:// URL`},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:port"}, `OTEL_EXPORTER_OTLP_ENDPOINT: invalid port ":port" after host; want an http:// or https:// URL`},
		{map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, `OTEL_EXPORTER_OTLP_TIMEOUT="10s": want milliseconds`},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "-1"}, `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="-1": want milliseconds`},
		{map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "api-key"}, `OTEL_EXPORTER_OTLP_HEADERS: the first pair is not key=value; want comma-separated key=value pairs, the values URL-encoded`},
		{map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, `OTEL_EXPORTER_OTLP_COMPRESSION="zstd": want gzip or none`},
		{map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"}, `OTEL_EXPORTER_OTLP_CERTIFICATE: open /nonexistent/ca.pem`},
	} {
		_, err := newOTLPExporter(func(name string) string { return tc.env[name] })
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%v: %v; want %q", tc.env, err, tc.want)
		}
	}
}

// An export's error says what to fix, naming the variable: the endpoint
// when nothing answers there, the headers when the collector wants other
// credentials, the CA when its certificate is not trusted; and the
// collector's own explanation when it gives one in text.
func TestOTLPExportErrorsSayWhatToFix(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	_ = ln.Close()
	unauthorized := httptest.NewServer(&flakyCollector{answers: []int{http.StatusForbidden}})
	defer unauthorized.Close()
	tlsOnly := httptest.NewTLSServer(&flakyCollector{})
	defer tlsOnly.Close()
	for _, tc := range []struct {
		name, url, want string
	}{
		{"no connection", closed, "no collector answers at OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{"403", unauthorized.URL, "403 Forbidden from " + unauthorized.URL + ": check the credentials in OTEL_EXPORTER_OTLP_HEADERS"},
		{"http to https", strings.Replace(tlsOnly.URL, "https:", "http:", 1), "400 Bad Request from " + strings.Replace(tlsOnly.URL, "https:", "http:", 1) + ": Client sent an HTTP request to an HTTPS server."},
		{"https to http", strings.Replace(unauthorized.URL, "http:", "https:", 1), "the collector at OTEL_EXPORTER_OTLP_TRACES_ENDPOINT answers in cleartext: make it an http:// URL"},
		{"untrusted certificate", tlsOnly.URL, "OTEL_EXPORTER_OTLP_CERTIFICATE: a PEM file of the CA that signed the collector's certificate"},
	} {
		_, err := exportTo(t, tc.url, "300")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: export error %v; want it to say %q", tc.name, err, tc.want)
		}
	}
}

// The credentials in OTEL_EXPORTER_OTLP_HEADERS are in no error the
// exporter returns (they are logged, or printed as the process exits):
// not in a refused pair, where a person typed a space for the "=", and
// not in a collector's text answer that echoes the key it refused.
func TestOTLPErrorsHideHeaderValues(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-token"
	_, err := newOTLPExporter(func(name string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=a,Authorization Bearer " + secret}[name]
	})
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_HEADERS: the pair after x-tenant is not key=value") {
		t.Errorf("a pair without =: %v; want an error that names the pair's place, not its text", err)
	}

	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "invalid api key "+r.Header.Get("Api-Key"), http.StatusUnauthorized)
	}))
	defer echo.Close()
	e, err := newOTLPExporter(func(name string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": echo.URL, "OTEL_EXPORTER_OTLP_HEADERS": "api-key=" + secret}[name]
	})
	if err != nil {
		t.Fatal(err)
	}
	err = e.ExportSpans(context.Background(), []sdktrace.ReadOnlySpan{tracetest.SpanStub{Name: "GetTeam"}.Snapshot()})
	if want := "401 Unauthorized from " + echo.URL + ": invalid api key ***; check the credentials in OTEL_EXPORTER_OTLP_HEADERS"; err == nil || err.Error() != "OTLP export: "+want {
		t.Errorf("a collector echoing the key: %v; want %q", err, want)
	}
}

// An export that fails on the collector's certificate, or on a collector
// that answers https in cleartext, is not tried again: no retry fixes a
// configuration, and the retries, until the export's timeout, ended with
// the timeout's error in place of the one that says what to fix.
func TestOTLPExportDoesNotRetryTLSMismatches(t *testing.T) {
	t.Parallel()
	plain := httptest.NewServer(&flakyCollector{})
	defer plain.Close()
	tlsOnly := httptest.NewTLSServer(&flakyCollector{})
	defer tlsOnly.Close()
	for name, url := range map[string]string{
		"untrusted certificate": tlsOnly.URL,
		"https to http":         strings.Replace(plain.URL, "http:", "https:", 1),
	} {
		took, err := exportTo(t, url, "5000")
		if err == nil || strings.Contains(err.Error(), "deadline") || took > 2*time.Second {
			t.Errorf("%s: export error %v after %v; want the TLS error at once", name, err, took)
		}
	}
}
