package telemetry_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/net/http2"
	"google.golang.org/protobuf/proto"

	greeterv1 "github.com/switchyard/switchyard/gen/greeter/v1"
	"github.com/switchyard/switchyard/gen/greeter/v1/greeterv1connect"
	keywordsv1 "github.com/switchyard/switchyard/gen/keywords/v1"
	"github.com/switchyard/switchyard/gen/keywords/v1/keywordsv1connect"
	legacyteams "github.com/switchyard/switchyard/gen/legacy/teams"
	"github.com/switchyard/switchyard/gen/legacy/teams/teamsconnect"
	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	summatorv1 "github.com/switchyard/switchyard/gen/summator/v1"
	"github.com/switchyard/switchyard/gen/summator/v1/summatorv1connect"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/outcome"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/telemetry"
	"github.com/switchyard/switchyard/internal/testserver"
)

// series is one value of switchyard_rpc_server_calls_total.
type series struct{ procedure, protocol, code, end string }

func (s series) String() string {
	return fmt.Sprintf("%s %s %s %s", s.procedure, s.protocol, s.code, s.end)
}

// mix drives a known mix of calls and counts what each should record.
type mix struct {
	t      *testing.T
	srv    *testserver.Server
	expect map[series]int
	// messages sent by ListFeatures over gRPC, as the client counted them
	listFeaturesSent int
}

func (m *mix) want(procedure, protocol, code, end string) {
	m.expect[series{procedure, protocol, code, end}]++
}

// call records what a connect client's call should count: its code as the
// client saw it, the call sent.
func (m *mix) call(procedure, protocol string, err error) {
	m.t.Helper()
	code := "ok"
	if err != nil {
		code = connect.CodeOf(err).String()
	}
	m.want(procedure, protocol, code, "sent")
}

// protocolLabel is the protocol label of a testserver.Protocols client.
func protocolLabel(name string) string {
	if strings.HasPrefix(name, "connect") {
		return "connect"
	}
	return name
}

func (m *mix) everyService(ctx context.Context, hc *http.Client, p testserver.Protocol) {
	t := m.t
	label := protocolLabel(p.Name)
	teams := teamsv1connect.NewTeamsServiceClient(hc, m.srv.URL, p.Opts...)
	for _, city := range []string{"Chicago", "Atlantis", ""} {
		_, err := teams.GetTeam(ctx, connect.NewRequest(&teamsv1.GetTeamRequest{City: city}))
		m.call(teamsv1connect.TeamsServiceGetTeamProcedure, label, err)
	}
	_, err := teams.PutTeam(ctx, connect.NewRequest(&teamsv1.PutTeamRequest{City: "Miami", Nickname: "Sharks"}))
	m.call(teamsv1connect.TeamsServicePutTeamProcedure, label, err)
	list, err := teams.ListTeams(ctx, connect.NewRequest(&teamsv1.ListTeamsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for list.Receive() {
	}
	m.call(teamsv1connect.TeamsServiceListTeamsProcedure, label, list.Err())

	greeter := greeterv1connect.NewGreeterServiceClient(hc, m.srv.URL, p.Opts...)
	_, err = greeter.SayHello(ctx, connect.NewRequest(&greeterv1.SayHelloRequest{Name: "mix"}))
	m.call(greeterv1connect.GreeterServiceSayHelloProcedure, label, err)

	kw := keywordsv1connect.NewKeywordsServiceClient(hc, m.srv.URL, p.Opts...)
	_, err = kw.GetKeywords(ctx, connect.NewRequest(&keywordsv1.GetKeywordsRequest{Text: "the quick brown fox"}))
	m.call(keywordsv1connect.KeywordsServiceGetKeywordsProcedure, label, err)

	sum := summatorv1connect.NewSummatorServiceClient(hc, m.srv.URL, p.Opts...)
	for _, v := range []float32{1, float32(math.NaN())} {
		_, err = sum.Sum(ctx, connect.NewRequest(&summatorv1.SumRequest{Value1: v, Value2: 2}))
		m.call(summatorv1connect.SummatorServiceSumProcedure, label, err)
	}

	rg := routeguidev1connect.NewRouteGuideServiceClient(hc, m.srv.URL, p.Opts...)
	_, err = rg.GetFeature(ctx, connect.NewRequest(&routeguidev1.GetFeatureRequest{Latitude: 409146138, Longitude: -746188906}))
	m.call(routeguidev1connect.RouteGuideServiceGetFeatureProcedure, label, err)
	features, err := rg.ListFeatures(ctx, connect.NewRequest(&routeguidev1.ListFeaturesRequest{
		Lo: &routeguidev1.Point{Latitude: -900000000, Longitude: -1800000000},
		Hi: &routeguidev1.Point{Latitude: 900000000, Longitude: 1800000000},
	}))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for features.Receive() {
		n++
	}
	if p.Name == "grpc" {
		m.listFeaturesSent += n
	}
	m.call(routeguidev1connect.RouteGuideServiceListFeaturesProcedure, label, features.Err())
	if hc == m.srv.HTTPClient { // client and bidi streams need HTTP/2
		route := rg.RecordRoute(ctx)
		for i := range 3 {
			if err := route.Send(&routeguidev1.RecordRouteRequest{Latitude: 407838351 + int32(i), Longitude: -746143763}); err != nil {
				t.Fatal(err)
			}
		}
		_, err = route.CloseAndReceive()
		m.call(routeguidev1connect.RouteGuideServiceRecordRouteProcedure, label, err)
		chat := rg.RouteChat(ctx)
		if err := chat.Send(&routeguidev1.RouteChatRequest{Location: &routeguidev1.Point{Latitude: 1, Longitude: 2}, Message: "hi"}); err != nil {
			t.Fatal(err)
		}
		if _, err := chat.Receive(); err != nil {
			t.Fatal(err)
		}
		_ = chat.CloseRequest()
		for {
			if _, err := chat.Receive(); err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				break
			}
		}
		_ = chat.CloseResponse()
		m.call(routeguidev1connect.RouteGuideServiceRouteChatProcedure, label, nil)
	}
	legacy := teamsconnect.NewTeamsClient(hc, m.srv.URL, p.Opts...)
	_, err = legacy.GetTeam(ctx, connect.NewRequest(&legacyteams.TeamRequest{City: "Miami"}))
	m.call(teamsconnect.TeamsGetTeamProcedure, label, err)
}

// raw sends a request by hand and counts it as the given series.
func (m *mix) raw(hc *http.Client, method, path, contentType string, header http.Header, body []byte, want series) {
	m.t.Helper()
	req, err := http.NewRequest(method, m.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		m.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := hc.Do(req)
	if err != nil {
		m.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	m.expect[want]++
}

func envelope(payload []byte) []byte {
	b := make([]byte, 5, 5+len(payload))
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	return append(b, payload...)
}

// rejected sends calls that no handler sees: they fail before decoding.
func (m *mix) rejected(hc *http.Client) {
	const getTeam = teamsv1connect.TeamsServiceGetTeamProcedure
	garbage := []byte{0xff, 0xff, 0xff}
	m.raw(hc, "POST", getTeam, "application/proto", nil, garbage, series{getTeam, "connect", "invalid_argument", "sent"})
	m.raw(hc, "POST", getTeam, "application/grpc-web+proto", nil, envelope(garbage), series{getTeam, "grpcweb", "invalid_argument", "sent"})
	oversized := make([]byte, 5)
	binary.BigEndian.PutUint32(oversized[1:], 5<<20) // declared beyond the 4 MiB limit
	m.raw(hc, "POST", getTeam, "application/grpc-web", nil, oversized, series{getTeam, "grpcweb", "resource_exhausted", "sent"})
	m.raw(hc, "POST", getTeam, "", nil, []byte(`{"city":"Chicago"}`), series{getTeam, "http", "unknown", "sent"})
	m.raw(hc, "POST", getTeam, "text/plain", nil, []byte(`{"city":"Chicago"}`), series{getTeam, "http", "unknown", "sent"})
	m.raw(hc, "POST", "/no.Such/Procedure", "application/json", nil, []byte(`{}`), series{"unknown", "connect", "unimplemented", "sent"})
	m.raw(hc, "POST", "/another.Unknown/Thing", "application/json", nil, []byte(`{}`), series{"unknown", "connect", "unimplemented", "sent"})
	m.raw(hc, "POST", getTeam, "application/json", http.Header{"Connect-Timeout-Ms": {"soon"}}, []byte(`{"city":"Chicago"}`),
		series{getTeam, "connect", "invalid_argument", "sent"})
}

// healthAndReflection calls the services every server serves beside the
// API, as probes and gRPC tools do: each is counted under its own
// procedure, not as "unknown" (neither registers descriptors, so the
// server names their methods itself).
func (m *mix) healthAndReflection(hc *http.Client) {
	grpc := http.Header{"Te": {"trailers"}}
	m.raw(hc, "POST", "/grpc.health.v1.Health/Check", "application/grpc", grpc, envelope(nil),
		series{"/grpc.health.v1.Health/Check", "grpc", "ok", "sent"})
	listServices := envelope([]byte{0x3a, 0x00}) // ServerReflectionRequest{list_services: ""}
	for _, svc := range []string{"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} {
		path := "/" + svc + "/ServerReflectionInfo"
		m.raw(hc, "POST", path, "application/grpc", grpc, listServices, series{path, "grpc", "ok", "sent"})
	}
}

// rejectedGRPC are rejected gRPC calls (HTTP/2 only).
func (m *mix) rejectedGRPC(hc *http.Client) {
	const getTeam = teamsv1connect.TeamsServiceGetTeamProcedure
	m.raw(hc, "POST", getTeam, "application/grpc", http.Header{"Te": {"trailers"}}, envelope([]byte{0xff, 0xff}),
		series{getTeam, "grpc", "invalid_argument", "sent"})
	m.raw(hc, "POST", getTeam, "application/grpc", http.Header{"Te": {"trailers"}, "Grpc-Timeout": {"forever"}}, envelope(nil),
		series{getTeam, "grpc", "invalid_argument", "sent"})
}

// spelledOtherwise are calls connect-go serves although their content
// type is not spelled as clients usually spell it: in upper case (connect-go
// compares it in lower case), or a GET that carries a Content-Type (connect-go
// chooses a GET's protocol by its query alone). Each is counted under the
// protocol that served it and the code its answer carried.
func (m *mix) spelledOtherwise(hc *http.Client, http2 bool) {
	const getTeam = teamsv1connect.TeamsServiceGetTeamProcedure
	atlantis, err := proto.Marshal(&teamsv1.GetTeamRequest{City: "Atlantis"})
	if err != nil {
		m.t.Fatal(err)
	}
	chicago, err := proto.Marshal(&teamsv1.GetTeamRequest{City: "Chicago"})
	if err != nil {
		m.t.Fatal(err)
	}
	if http2 {
		m.raw(hc, "POST", getTeam, "Application/gRPC", http.Header{"Te": {"trailers"}}, envelope(atlantis),
			series{getTeam, "grpc", "not_found", "sent"})
	}
	m.raw(hc, "POST", getTeam, "application/GRPC-WEB", nil, envelope(atlantis), series{getTeam, "grpcweb", "not_found", "sent"})
	m.raw(hc, "POST", getTeam, "application/JSON", nil, []byte(`{"city":"Atlantis"}`), series{getTeam, "connect", "not_found", "sent"})
	get := func(query, contentType string, want series) {
		m.raw(hc, "GET", getTeam+"?"+query, contentType, nil, nil, want)
	}
	get("encoding=json&message="+url.QueryEscape(`{"city":"Atlantis"}`), "application/json", series{getTeam, "connect", "not_found", "sent"})
	get("encoding=json&message=%7B%7D", "application/json", series{getTeam, "connect", "invalid_argument", "sent"})
	get("encoding=proto&base64=1&message="+base64.RawURLEncoding.EncodeToString(chicago), "application/grpc", series{getTeam, "connect", "ok", "sent"})
	get("encoding=proto&base64=1&mess%61ge="+base64.RawURLEncoding.EncodeToString(atlantis), "", series{getTeam, "connect", "not_found", "sent"})
}

// stalledStream opens a ListFeatures stream over gRPC whose client never
// opens a flow-control window: internal/h2 resets it (CANCEL) after its
// send-window timeout; with net/http's server, which has no such bound,
// the client gives up and resets it.
func (m *mix) stalledStream(stdHTTP2 bool) {
	t := m.t
	c := testserver.DialH2(t, m.srv.Addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	const proc = routeguidev1connect.RouteGuideServiceListFeaturesProcedure
	c.WriteHeaders(1, false, ":method", "POST", ":scheme", "http", ":path", proc, ":authority", "x",
		"content-type", "application/grpc", "te", "trailers")
	msg, err := proto.Marshal(&routeguidev1.ListFeaturesRequest{
		Lo: &routeguidev1.Point{Latitude: -900000000, Longitude: -1800000000},
		Hi: &routeguidev1.Point{Latitude: 900000000, Longitude: 1800000000},
	})
	if err != nil {
		t.Fatal(err)
	}
	req := envelope(msg)
	if err := c.Fr.WriteData(1, true, req); err != nil {
		t.Fatal(err)
	}
	if stdHTTP2 {
		time.Sleep(300 * time.Millisecond)
		if err := c.Fr.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
			t.Fatal(err)
		}
		m.want(proc, "grpc", "canceled", "client_reset")
		return
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		f, err := c.ReadFrame(time.Until(deadline))
		if err != nil {
			t.Fatalf("no RST_STREAM for the stalled stream: %v", err)
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.StreamID == 1 {
			if rst.ErrCode != http2.ErrCodeCancel {
				t.Fatalf("stalled stream reset with %v, want CANCEL", rst.ErrCode)
			}
			break
		}
	}
	m.want(proc, "grpc", "canceled", "server_reset")
}

// scrape reads the metrics as Prometheus would.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return families
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func callCounts(families map[string]*dto.MetricFamily) map[series]int {
	got := map[series]int{}
	for _, m := range families["switchyard_rpc_server_calls_total"].GetMetric() {
		l := labels(m)
		got[series{l["procedure"], l["protocol"], l["code"], l["end"]}] = int(m.GetCounter().GetValue())
	}
	return got
}

func total(counts map[series]int) int {
	n := 0
	for _, v := range counts {
		n += v
	}
	return n
}

func diff(got, want map[series]int) string {
	var lines []string
	for s, n := range want {
		if got[s] != n {
			lines = append(lines, fmt.Sprintf("  %v: got %d, want %d", s, got[s], n))
		}
	}
	for s, n := range got {
		if _, ok := want[s]; !ok {
			lines = append(lines, fmt.Sprintf("  %v: got %d, want none", s, n))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestMetricsCountAKnownMix drives every service in every protocol, with
// errors, calls rejected before decoding and a stream whose client stops
// reading, over internal/h2 and over net/http's HTTP/2 server (with
// HTTP/1.1 clients too), and checks that the scraped call counts, per
// procedure, protocol, code and end, are exactly the mix.
func TestMetricsCountAKnownMix(t *testing.T) {
	for _, stdHTTP2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "internal/h2", true: "net/http"}[stdHTTP2], func(t *testing.T) {
			tel, err := telemetry.New(telemetry.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: true})
			if err != nil {
				t.Fatal(err)
			}
			srv := testserver.StartWith(t, server.Config{Telemetry: tel, AdminToken: "mix-token"}, testserver.Options{HTTP: server.HTTPConfig{
				StdHTTP2:          stdHTTP2,
				SendWindowTimeout: 300 * time.Millisecond,
			}})
			m := &mix{t: t, srv: srv, expect: map[series]int{}}
			ctx := context.Background()
			http1 := &http.Client{Transport: &http.Transport{}}
			defer http1.CloseIdleConnections()
			for _, p := range testserver.Protocols() {
				m.everyService(ctx, srv.HTTPClient, p)
				if p.Name != "grpc" { // gRPC needs HTTP/2
					m.everyService(ctx, http1, p)
				}
			}
			m.rejected(srv.HTTPClient)
			m.rejected(http1)
			m.rejectedGRPC(srv.HTTPClient)
			m.spelledOtherwise(srv.HTTPClient, true)
			m.spelledOtherwise(http1, false)
			m.healthAndReflection(srv.HTTPClient)
			m.stalledStream(stdHTTP2)

			var got map[series]int
			var families map[string]*dto.MetricFamily
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				families = scrape(t, tel.Metrics())
				if got = callCounts(families); total(got) >= total(m.expect) {
					break
				}
			}
			t.Logf("%d calls recorded, %d made", total(got), total(m.expect))
			if d := diff(got, m.expect); d != "" {
				t.Fatalf("switchyard_rpc_server_calls_total differs from the mix (%d calls recorded, %d made):\n%s", total(got), total(m.expect), d)
			}
			for _, mf := range families["switchyard_rpc_server_in_flight"].GetMetric() {
				if v := mf.GetGauge().GetValue(); v != 0 {
					t.Errorf("in flight %v: %v after every call ended", labels(mf), v)
				}
			}
			sentByGRPC := 0.0
			for _, mf := range families["switchyard_rpc_server_messages_sent_total"].GetMetric() {
				if l := labels(mf); l["procedure"] == routeguidev1connect.RouteGuideServiceListFeaturesProcedure && l["protocol"] == "grpc" {
					sentByGRPC = mf.GetCounter().GetValue()
				}
			}
			if int(sentByGRPC) != m.listFeaturesSent {
				t.Errorf("ListFeatures over gRPC sent %v messages by the metrics, the client received %d", sentByGRPC, m.listFeaturesSent)
			}
			if !fastGetTeamBucket(t, families) {
				t.Error("no GetTeam call landed in a latency bucket below 1 ms")
			}
		})
	}
}

// fastGetTeamBucket reports whether a GetTeam call over gRPC was counted
// in a histogram bucket whose bound is below 1 ms, and checks that the
// histogram has such buckets.
func fastGetTeamBucket(t *testing.T, families map[string]*dto.MetricFamily) bool {
	t.Helper()
	for _, mf := range families["switchyard_rpc_server_duration_seconds"].GetMetric() {
		l := labels(mf)
		if l["procedure"] != teamsv1connect.TeamsServiceGetTeamProcedure || l["protocol"] != "grpc" {
			continue
		}
		for _, b := range mf.GetHistogram().GetBucket() {
			if b.GetUpperBound() < 0.001 && b.GetCumulativeCount() > 0 {
				return true
			}
		}
	}
	return false
}

// TestMetricsFastCallsResolveBelowAMillisecond: the latency histogram's
// buckets tell sub-millisecond calls apart (GetTeam's p50 is below 2 ms; a
// 5 ms first bucket would make every p99 read "<= 5 ms").
func TestMetricsFastCallsResolveBelowAMillisecond(t *testing.T) {
	m := startMetricsTeams(t, nil)
	var wg sync.WaitGroup
	for range 50 {
		if _, err := m.client.GetTeam(context.Background(), connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"})); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	time.Sleep(50 * time.Millisecond) // the last record ends after its response
	families := scrape(t, m.tel.Metrics())
	if !fastGetTeamBucket(t, families) {
		t.Errorf("none of 50 GetTeam calls landed below 1 ms:\n%v", families["switchyard_rpc_server_duration_seconds"])
	}
}

// HTTP/2 error codes are labelled by name, and every code HTTP/2 does not
// name, 0xe and 0xf included, is one code="unknown": min(code, 15) named
// 0x1234 "unknown error code 0xf".
func TestMetricsHTTP2CodeLabels(t *testing.T) {
	t.Parallel()
	tel, err := telemetry.New(telemetry.Options{Logger: slog.New(slog.DiscardHandler), Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []uint32{uint32(http2.ErrCodeCancel), uint32(http2.ErrCodeHTTP11Required), 0xe, 0xf, 0x1234} {
		tel.StreamReset(true, code)
		tel.GoAway(code, outcome.GoAwayShutdown)
	}
	families := scrape(t, tel.Metrics())
	for _, name := range []string{"switchyard_http2_stream_resets_total", "switchyard_http2_goaways_sent_total"} {
		got := map[string]float64{}
		for _, m := range families[name].GetMetric() {
			got[labels(m)["code"]] += m.GetCounter().GetValue()
		}
		want := map[string]float64{"CANCEL": 1, "HTTP_1_1_REQUIRED": 1, "unknown": 3}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s by code: %v, want %v", name, got, want)
		}
	}
}
