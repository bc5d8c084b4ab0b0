package server_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	greeterv1 "github.com/switchyard/switchyard/gen/greeter/v1"
	"github.com/switchyard/switchyard/gen/greeter/v1/greeterv1connect"
	keywordsv1 "github.com/switchyard/switchyard/gen/keywords/v1"
	"github.com/switchyard/switchyard/gen/keywords/v1/keywordsv1connect"
	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	"github.com/switchyard/switchyard/gen/summator/v1/summatorv1connect"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// The bad-input table is sent as raw HTTP, because generated clients refuse
// to encode most of it (invalid UTF-8, broken messages, wrong content types).
// Every case runs in gRPC, gRPC-Web and Connect, with the binary and the
// JSON codec where the case has a body for it.

// rawResult is what a client would make of a raw call.
type rawResult struct {
	code     connect.Code // 0 (OK) or the error code
	msg      string
	status   int // HTTP status
	messages int // response messages received
}

type rawCase struct {
	name      string
	procedure string
	streaming bool // server or client streaming: the enveloped Connect form
	// proto and json are the request message in each codec; nil skips the codec.
	proto, json []byte
	// contentType replaces the protocol's content type when set ("%s" is
	// the protocol's prefix, e.g. "application/grpc").
	contentType string
	want        connect.Code
	wantHTTP    int    // checked when non-zero
	wantMsg     string // in the error's message, when set
	wantMsgs    int    // response messages on success
	gzip        bool   // proto and json are gzipped: sent as the protocol says
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stringField is field 1 holding s, without the UTF-8 check of proto.Marshal.
func stringField(s string) []byte {
	return protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), s)
}

func sumProto(a, b float32) []byte {
	var out []byte
	out = protowire.AppendTag(out, 1, protowire.Fixed32Type)
	out = protowire.AppendFixed32(out, math.Float32bits(a))
	out = protowire.AppendTag(out, 2, protowire.Fixed32Type)
	return protowire.AppendFixed32(out, math.Float32bits(b))
}

func badInputCases(t *testing.T) []rawCase {
	huge := strings.Repeat("word ", 2<<20/5+1) // over the 1 MiB keyword limit, under the 4 MiB message limit
	oversized := strings.Repeat("x", server.DefaultReadMaxBytes+1)
	gz := func(b []byte) []byte {
		var zipped bytes.Buffer
		zw := gzip.NewWriter(&zipped)
		if _, err := zw.Write(b); err != nil || zw.Close() != nil {
			t.Fatal(err)
		}
		return zipped.Bytes()
	}
	// 16 MiB of spaces: 4 times the message limit, in 16 KiB of gzip.
	bomb := gz(bytes.Repeat([]byte(" "), 16<<20))
	return []rawCase{
		{name: "malformed protobuf", procedure: teamsv1connect.TeamsServiceGetTeamProcedure,
			proto: []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, want: connect.CodeInvalidArgument},
		{name: "malformed protobuf wire type", procedure: summatorv1connect.SummatorServiceSumProcedure,
			proto: []byte{0x0f}, want: connect.CodeInvalidArgument},
		{name: "malformed JSON", procedure: teamsv1connect.TeamsServiceGetTeamProcedure,
			json: []byte(`{"city":`), want: connect.CodeInvalidArgument},
		{name: "JSON of the wrong shape", procedure: summatorv1connect.SummatorServiceSumProcedure,
			json: []byte(`{"value1":"five"}`), want: connect.CodeInvalidArgument},
		{name: "wrong content type", procedure: greeterv1connect.GreeterServiceSayHelloProcedure,
			proto: marshal(t, &greeterv1.SayHelloRequest{Name: "x"}), contentType: "%s+xml",
			want: connect.CodeUnknown, wantHTTP: http.StatusUnsupportedMediaType},
		{name: "text/plain content type", procedure: greeterv1connect.GreeterServiceSayHelloProcedure,
			proto: marshal(t, &greeterv1.SayHelloRequest{Name: "x"}), contentType: "text/plain",
			want: connect.CodeUnknown, wantHTTP: http.StatusUnsupportedMediaType},
		// As grpc-go answers: a message naming what is served.
		{name: "unknown procedure", procedure: "/teams.v1.TeamsService/NoSuchMethod",
			proto: []byte{}, json: []byte(`{}`), want: connect.CodeUnimplemented,
			wantMsg: "unknown method NoSuchMethod for service teams.v1.TeamsService; it has DeleteTeam, GetTeam, ListTeams, PutTeam"},
		{name: "unknown procedure in a stream", procedure: "/teams.v1.TeamsService/NoSuchMethod", streaming: true,
			proto: []byte{}, json: []byte(`{}`), want: connect.CodeUnimplemented,
			wantMsg: "unknown method NoSuchMethod for service teams.v1.TeamsService; it has DeleteTeam, GetTeam, ListTeams, PutTeam"},
		// What the answer repeats of the path is bounded, and an unclean
		// path is no other procedure.
		{name: "unknown procedure with a long name", procedure: "/teams.v1.TeamsService/" + strings.Repeat("x", 40000),
			proto: []byte{}, want: connect.CodeUnimplemented,
			wantMsg: "unknown method " + strings.Repeat("x", 125) + "... for service teams.v1.TeamsService; it has DeleteTeam"},
		{name: "unclean path", procedure: "/teams.v1.TeamsService//GetTeam",
			proto: []byte{}, json: []byte(`{}`), want: connect.CodeUnimplemented,
			wantMsg: "unknown method /GetTeam for service teams.v1.TeamsService; it has DeleteTeam, GetTeam, ListTeams, PutTeam"},
		// A procedure's path is routed as sent, as grpc-go routes it: one
		// with %-escapes names none, so a proxy's rule on the path sees
		// what the server serves.
		{name: "escaped slash", procedure: "/teams.v1.TeamsService%2FPutTeam",
			proto: marshal(t, &teamsv1.PutTeamRequest{City: "Miami", Nickname: "Sharks"}), json: []byte(`{"city":"Miami","nickname":"Sharks"}`), want: connect.CodeUnimplemented,
			wantMsg: "the path /teams.v1.TeamsService%2FPutTeam names no procedure: a procedure's path is sent as it is named, without %-escapes (/package.Service/Method)"},
		{name: "escaped letter", procedure: "/teams.v1.TeamsService/%47etTeam",
			proto: marshal(t, &teamsv1.GetTeamRequest{City: "Chicago"}), json: []byte(`{"city":"Chicago"}`), want: connect.CodeUnimplemented,
			wantMsg: "the path /teams.v1.TeamsService/%47etTeam names no procedure: a procedure's path is sent as it is named, without %-escapes (/package.Service/Method)"},
		{name: "no method", procedure: "/teams.v1.TeamsService/",
			proto: []byte{}, json: []byte(`{}`), want: connect.CodeUnimplemented,
			wantMsg: "the path names service teams.v1.TeamsService but no method; it has DeleteTeam, GetTeam, ListTeams, PutTeam"},
		{name: "unknown service", procedure: "/nosuch.v1.Service/Method",
			proto: []byte{}, json: []byte(`{}`), want: connect.CodeUnimplemented,
			wantMsg: "unknown service nosuch.v1.Service; this server serves KeywordService, Summator, Teams, greeter.v1.GreeterService, "},
		{name: "unknown service in a stream", procedure: "/nosuch.v1.Service/Method", streaming: true,
			proto: []byte{}, json: []byte(`{}`), want: connect.CodeUnimplemented,
			wantMsg: "unknown service nosuch.v1.Service; this server serves KeywordService, Summator, Teams, greeter.v1.GreeterService, "},
		// A path that is no page is no procedure either, whatever its shape.
		{name: "unknown service with more segments", procedure: "/nosuch.v1.Service/Method/More",
			proto: []byte{}, json: []byte(`{}`), want: connect.CodeUnimplemented,
			wantMsg: "unknown service nosuch.v1.Service; this server serves KeywordService, Summator, Teams, greeter.v1.GreeterService, "},
		{name: "a path with no service", procedure: "/GetTeam",
			proto: []byte{}, json: []byte(`{}`), want: connect.CodeUnimplemented,
			wantMsg: "the path /GetTeam names no procedure (/package.Service/Method); this server serves KeywordService, "},
		{name: "a service's path without its slash", procedure: "/teams.v1.TeamsService",
			proto: []byte{}, json: []byte(`{}`), want: connect.CodeUnimplemented,
			wantMsg: "the path names service teams.v1.TeamsService but no method; it has DeleteTeam, GetTeam, ListTeams, PutTeam"},
		{name: "the console's path", procedure: "/", streaming: true,
			proto: []byte{}, want: connect.CodeUnimplemented,
			wantMsg: "the path / names no procedure (/package.Service/Method); this server serves KeywordService, "},
		{name: "oversized message", procedure: keywordsv1connect.KeywordsServiceGetKeywordsProcedure,
			proto: marshal(t, &keywordsv1.GetKeywordsRequest{Text: oversized}), want: connect.CodeResourceExhausted},
		{name: "oversized message in a stream", procedure: routeguidev1connect.RouteGuideServiceRecordRouteProcedure, streaming: true,
			proto: protowire.AppendBytes(protowire.AppendTag(nil, 99, protowire.BytesType), []byte(oversized)),
			want:  connect.CodeResourceExhausted},
		// A compressed message is read as far as its limit and no further:
		// grpc-go's bound, where connect-go would decompress the rest to
		// report its size.
		{name: "compressed message", procedure: keywordsv1connect.KeywordsServiceGetKeywordsProcedure, gzip: true,
			proto: gz(marshal(t, &keywordsv1.GetKeywordsRequest{Text: "gzip"})), json: gz([]byte(`{"text":"gzip"}`)), want: codeOK, wantMsgs: 1},
		{name: "compressed message past the limit", procedure: keywordsv1connect.KeywordsServiceGetKeywordsProcedure, gzip: true,
			proto: bomb, json: bomb, want: connect.CodeResourceExhausted,
			wantMsg: fmt.Sprintf("message is larger than configured max %d - unable to determine message size: decompression stopped past the limit", server.DefaultReadMaxBytes)},
		{name: "compressed message past the limit in a stream", procedure: routeguidev1connect.RouteGuideServiceRecordRouteProcedure, streaming: true, gzip: true,
			proto: bomb, want: connect.CodeResourceExhausted,
			wantMsg: fmt.Sprintf("message is larger than configured max %d - unable to determine message size: decompression stopped past the limit", server.DefaultReadMaxBytes)},
		{name: "invalid UTF-8", procedure: teamsv1connect.TeamsServiceGetTeamProcedure,
			proto: stringField("Chi\xffcago"), json: []byte("{\"city\":\"Chi\xffcago\"}"), want: connect.CodeInvalidArgument},
		{name: "invalid UTF-8 in a stream", procedure: routeguidev1connect.RouteGuideServiceRouteChatProcedure, streaming: true,
			proto: protowire.AppendString(protowire.AppendTag(nil, 2, protowire.BytesType), "\xc3\x28"), want: connect.CodeInvalidArgument},
		{name: "NaN summand", procedure: summatorv1connect.SummatorServiceSumProcedure,
			proto: sumProto(float32(math.NaN()), 1), json: []byte(`{"value1":"NaN","value2":1}`), want: connect.CodeInvalidArgument},
		{name: "infinite summand", procedure: summatorv1connect.SummatorServiceSumProcedure,
			proto: sumProto(1, float32(math.Inf(-1))), json: []byte(`{"value1":1,"value2":"-Infinity"}`), want: connect.CodeInvalidArgument},
		{name: "overflowing sum", procedure: summatorv1connect.SummatorServiceSumProcedure,
			proto: sumProto(math.MaxFloat32, math.MaxFloat32), want: connect.CodeOutOfRange},
		{name: "empty keyword text", procedure: keywordsv1connect.KeywordsServiceGetKeywordsProcedure,
			proto: []byte{}, json: []byte(`{"text":""}`), want: codeOK, wantMsgs: 1},
		{name: "huge keyword text", procedure: keywordsv1connect.KeywordsServiceGetKeywordsProcedure,
			proto: marshal(t, &keywordsv1.GetKeywordsRequest{Text: huge}), want: connect.CodeResourceExhausted},
		{name: "latitude out of range", procedure: routeguidev1connect.RouteGuideServiceGetFeatureProcedure,
			proto: marshal(t, &routeguidev1.GetFeatureRequest{Latitude: 900000001}), json: []byte(`{"latitude":-900000001}`), want: connect.CodeInvalidArgument},
		{name: "longitude out of range", procedure: routeguidev1connect.RouteGuideServiceGetFeatureProcedure,
			proto: marshal(t, &routeguidev1.GetFeatureRequest{Longitude: 1800000001}), want: connect.CodeInvalidArgument},
		{name: "rectangle out of range", procedure: routeguidev1connect.RouteGuideServiceListFeaturesProcedure, streaming: true,
			proto: marshal(t, &routeguidev1.ListFeaturesRequest{Hi: &routeguidev1.Point{Latitude: 1000000000}}), want: connect.CodeInvalidArgument},
		{name: "route point out of range", procedure: routeguidev1connect.RouteGuideServiceRecordRouteProcedure, streaming: true,
			proto: marshal(t, &routeguidev1.RecordRouteRequest{Latitude: -900000001}), want: connect.CodeInvalidArgument},
		{name: "lo/hi swapped", procedure: routeguidev1connect.RouteGuideServiceListFeaturesProcedure, streaming: true,
			proto: marshal(t, &routeguidev1.ListFeaturesRequest{Lo: wholeMap.GetHi(), Hi: wholeMap.GetLo()}),
			json:  []byte(`{"lo":{"latitude":420000000,"longitude":-730000000},"hi":{"latitude":400000000,"longitude":-750000000}}`),
			want:  codeOK, wantMsgs: 100},
		{name: "empty city", procedure: teamsv1connect.TeamsServiceGetTeamProcedure,
			proto: []byte{}, json: []byte(`{}`), want: connect.CodeInvalidArgument},
		{name: "write without token", procedure: teamsv1connect.TeamsServicePutTeamProcedure,
			proto: marshal(t, &teamsv1.PutTeamRequest{City: "Miami", Nickname: "Sharks"}), want: connect.CodePermissionDenied},
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	// The group returns when all its parallel cases have finished.
	t.Run("cases", func(t *testing.T) { runBadInput(t, srv) })
	checkHealthy(t, srv)
}

// The same answers from net/http's HTTP/2 server (-http2-server
// net/http), which parses a request's :path on its own.
func TestBadInputNetHTTP(t *testing.T) {
	t.Parallel()
	srv := testserver.StartWith(t, server.Config{}, testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: true}})
	t.Run("cases", func(t *testing.T) { runBadInput(t, srv) })
	checkHealthy(t, srv)
}

func runBadInput(t *testing.T, srv *testserver.Server) {
	for _, tc := range badInputCases(t) {
		for _, protocol := range []string{"connect", "grpc", "grpcweb"} {
			for _, codec := range []string{"proto", "json"} {
				body := tc.proto
				if codec == "json" {
					body = tc.json
				}
				if body == nil {
					continue
				}
				t.Run(fmt.Sprintf("%s/%s+%s", tc.name, protocol, codec), func(t *testing.T) {
					t.Parallel()
					got := rawCall(t, srv, protocol, codec, tc, body)
					if got.code != tc.want {
						t.Errorf("code %v (%q, HTTP %d), want %v", got.code, got.msg, got.status, tc.want)
					}
					if tc.wantHTTP != 0 && got.status != tc.wantHTTP {
						t.Errorf("HTTP status %d, want %d", got.status, tc.wantHTTP)
					}
					if !strings.Contains(got.msg, tc.wantMsg) {
						t.Errorf("message %q, want it to contain %q", got.msg, tc.wantMsg)
					}
					if tc.want == codeOK && got.messages != tc.wantMsgs {
						t.Errorf("%d response messages, want %d", got.messages, tc.wantMsgs)
					}
					if tc.want != codeOK && tc.wantHTTP == 0 && got.msg == "" {
						t.Errorf("error %v has no message", got.code)
					}
					for _, leak := range []string{"goroutine ", ".go:", "panic", "/root/", "/home/"} {
						if strings.Contains(got.msg, leak) {
							t.Errorf("message %q leaks %q", got.msg, leak)
						}
					}
				})
			}
		}
	}
}

// checkHealthy asserts that the server still reports SERVING and answers.
func checkHealthy(t *testing.T, srv *testserver.Server) {
	t.Helper()
	health := connect.NewClient[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse](
		srv.HTTPClient, srv.URL+"/grpc.health.v1.Health/Check", connect.WithGRPC())
	res, err := health.CallUnary(ctx(t), connect.NewRequest(&healthpb.HealthCheckRequest{}))
	if err != nil || res.Msg.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health after the bad input: %v, %v", res, err)
	}
	hello, err := greeterv1connect.NewGreeterServiceClient(srv.HTTPClient, srv.URL).
		SayHello(ctx(t), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "still here"}))
	if err != nil || hello.Msg.GetMessage() != "Hello, still here!" {
		t.Errorf("SayHello after the bad input: %v, %v", hello, err)
	}
}

func envelope(flags byte, msg []byte) []byte {
	out := make([]byte, 5, 5+len(msg))
	out[0] = flags
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	return append(out, msg...)
}

// rawCall sends body as tc's request in protocol and codec over srv's h2c
// client and decodes the outcome the way that protocol's clients do.
func rawCall(t *testing.T, srv *testserver.Server, protocol, codec string, tc rawCase, body []byte) rawResult {
	t.Helper()
	var prefix string
	flags := byte(0)
	if tc.gzip {
		flags = 1
	}
	payload := envelope(flags, body)
	switch {
	case protocol == "grpc":
		prefix = "application/grpc"
	case protocol == "grpcweb":
		prefix = "application/grpc-web"
	case tc.streaming:
		prefix = "application/connect"
	default:
		prefix, payload = "application", body
	}
	contentType := prefix + "+" + codec
	if prefix == "application" {
		contentType = "application/" + codec
	}
	if tc.contentType != "" {
		contentType = strings.ReplaceAll(tc.contentType, "%s", prefix)
	}
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, srv.URL+tc.procedure, bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if tc.gzip {
		switch {
		case protocol != "connect":
			req.Header.Set("Grpc-Encoding", "gzip")
		case tc.streaming:
			req.Header.Set("Connect-Content-Encoding", "gzip")
		default:
			req.Header.Set("Content-Encoding", "gzip")
		}
	}
	if protocol == "grpc" {
		req.Header.Set("TE", "trailers")
	}
	res, err := srv.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	out := rawResult{status: res.StatusCode}
	if protocol == "connect" && !tc.streaming {
		if res.StatusCode == http.StatusOK {
			out.messages = 1
			return out
		}
		out.code, out.msg = connectErrorJSON(data, res.StatusCode)
		return out
	}
	// Enveloped response: messages, then (Connect, gRPC-Web) an end frame.
	var trailer http.Header
	for res.StatusCode == http.StatusOK && len(data) >= 5 {
		flags, n := data[0], binary.BigEndian.Uint32(data[1:5])
		if int(n) > len(data)-5 {
			t.Fatalf("truncated envelope")
		}
		msg := data[5 : 5+n]
		data = data[5+n:]
		switch {
		case protocol == "connect" && flags&0x02 != 0:
			var end struct {
				Error *json.RawMessage `json:"error"`
			}
			if err := json.Unmarshal(msg, &end); err != nil {
				t.Fatalf("end-stream message %q: %v", msg, err)
			}
			if end.Error != nil {
				out.code, out.msg = connectErrorJSON(*end.Error, 0)
			}
			return out
		case protocol == "grpcweb" && flags&0x80 != 0:
			trailer = parseGRPCWebTrailer(t, msg)
		default:
			out.messages++
		}
	}
	if protocol == "connect" {
		out.code, out.msg = connectErrorJSON(data, res.StatusCode)
		return out
	}
	if trailer == nil {
		trailer = res.Trailer
	}
	status := trailer.Get("Grpc-Status")
	if status == "" {
		status = res.Header.Get("Grpc-Status") // trailers-only response
	}
	if status == "" {
		out.code = httpToCode(res.StatusCode)
		return out
	}
	c, err := strconv.Atoi(status)
	if err != nil {
		t.Fatalf("grpc-status %q", status)
	}
	out.code = connect.Code(c)
	out.msg = trailer.Get("Grpc-Message")
	if out.msg == "" {
		out.msg = res.Header.Get("Grpc-Message")
	}
	// grpc-message is percent-encoded; clients decode it.
	if decoded, err := url.PathUnescape(out.msg); err == nil {
		out.msg = decoded
	}
	return out
}

func parseGRPCWebTrailer(t *testing.T, block []byte) http.Header {
	t.Helper()
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(block, "\r\n"...))))
	h, err := r.ReadMIMEHeader()
	if err != nil && err != io.EOF {
		t.Fatalf("grpc-web trailer %q: %v", block, err)
	}
	return http.Header(h)
}

// connectErrorJSON decodes a Connect error body; without one, the HTTP
// status decides, as in connect-go's client.
func connectErrorJSON(data []byte, status int) (connect.Code, string) {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &e) != nil || e.Code == "" {
		return httpToCode(status), ""
	}
	var c connect.Code
	if err := c.UnmarshalText([]byte(e.Code)); err != nil {
		return connect.CodeUnknown, e.Message
	}
	return c, e.Message
}

// httpToCode is gRPC's mapping of HTTP status to code, which connect-go's
// clients apply when a response carries no code.
func httpToCode(status int) connect.Code {
	switch status {
	case 400:
		return connect.CodeInternal
	case 401:
		return connect.CodeUnauthenticated
	case 403:
		return connect.CodePermissionDenied
	case 404:
		return connect.CodeUnimplemented
	case 429, 502, 503, 504:
		return connect.CodeUnavailable
	}
	return connect.CodeUnknown
}

// codeOK is success; connect.Code has no name for it.
const codeOK connect.Code = 0
