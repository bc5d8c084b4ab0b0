package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	greeterv1 "github.com/switchyard/switchyard/gen/greeter/v1"
	keywordsv1 "github.com/switchyard/switchyard/gen/keywords/v1"
	"github.com/switchyard/switchyard/gen/legacy/helloworld"
	legacyroute "github.com/switchyard/switchyard/gen/legacy/routeguide"
	legacyteams "github.com/switchyard/switchyard/gen/legacy/teams"
	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	summatorv1 "github.com/switchyard/switchyard/gen/summator/v1"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// Every unary procedure of Switchyard's own services (v1 and the
// tutorials' names) has a direct path, and none of health, reflection or
// a mounted service does; -grpc-unary connect (Config.ConnectOnly) turns
// them all off.
func TestDirectUnaryProcedures(t *testing.T) {
	s := server.New(server.Config{})
	var want []string
	for _, p := range s.Procedures {
		if p.Unary && !strings.HasPrefix(p.Path, "/grpc.") {
			want = append(want, p.Path)
		}
	}
	slices.Sort(want)
	if got := server.DirectUnary(s); !slices.Equal(got, want) || len(want) < 14 {
		t.Errorf("direct unary procedures = %q\nwant %q", got, want)
	}
	// Connect's GETs are served directly for the procedures declared
	// without side effects, as their generated handlers take GETs.
	get := server.DirectGet(s)
	wantGet := []string{
		"/greeter.v1.GreeterService/SayHello", "/greeter.v1.GreeterService/SayHelloAgain",
		"/keywords.v1.KeywordsService/GetKeywords", "/routeguide.v1.RouteGuideService/GetFeature",
		"/summator.v1.SummatorService/Sum", "/teams.v1.TeamsService/GetTeam",
	}
	if !slices.Equal(get, wantGet) {
		t.Errorf("direct procedures taking GET = %q\nwant %q", get, wantGet)
	}
	if got := server.DirectUnary(server.New(server.Config{ConnectOnly: true})); len(got) != 0 {
		t.Errorf("with ConnectOnly, direct unary procedures = %q; want none", got)
	}
}

// The real services answer the same requests the same way, and log the
// same per-call lines, whether internal/grpcunary or connect-go serves
// them: found, not found, invalid, unauthenticated and authorized writes,
// the legacy names, and every service, in gRPC, gRPC-Web and Connect (POST
// and GET).
func TestDirectUnaryAnswersAsConnect(t *testing.T) {
	start := func(connectOnly bool) (*testserver.Server, *lockedBuffer) {
		logs := new(lockedBuffer)
		srv := testserver.Start(t, server.Config{
			AdminToken:  "tok",
			ConnectOnly: connectOnly,
			Logger:      slog.New(slog.NewTextHandler(logs, nil)),
		})
		return srv, logs
	}
	direct, directLogs := start(false)
	viaConnect, connectLogs := start(true)
	envelope := func(b []byte) []byte {
		env := make([]byte, 5, 5+len(b))
		binary.BigEndian.PutUint32(env[1:], uint32(len(b)))
		return append(env, b...)
	}
	msg := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return envelope(b)
	}
	type req struct {
		path   string
		body   []byte
		header []string
	}
	auth := []string{"Authorization", "Bearer tok"}
	reqs := []req{
		{"/teams.v1.TeamsService/GetTeam", msg(&teamsv1.GetTeamRequest{City: "Chicago"}), nil},
		{"/teams.v1.TeamsService/GetTeam", msg(&teamsv1.GetTeamRequest{City: "Gotham"}), []string{"Grpc-Timeout", "10S"}},
		{"/teams.v1.TeamsService/GetTeam", msg(&teamsv1.GetTeamRequest{}), nil},
		{"/teams.v1.TeamsService/GetTeam", msg(&teamsv1.GetTeamRequest{City: strings.Repeat("x", 200)}), nil},
		{"/teams.v1.TeamsService/PutTeam", msg(&teamsv1.PutTeamRequest{City: "Gotham", Nickname: "Bats"}), nil},
		{"/teams.v1.TeamsService/PutTeam", msg(&teamsv1.PutTeamRequest{City: "Gotham", Nickname: "Bats"}), []string{"Authorization", "Bearer nope"}},
		{"/teams.v1.TeamsService/PutTeam", msg(&teamsv1.PutTeamRequest{City: "Gotham", Nickname: "Bats"}), auth},
		{"/teams.v1.TeamsService/PutTeam", msg(&teamsv1.PutTeamRequest{City: "Gotham", Nickname: "Bats"}), auth},
		{"/teams.v1.TeamsService/GetTeam", msg(&teamsv1.GetTeamRequest{City: "Gotham"}), nil},
		{"/teams.v1.TeamsService/DeleteTeam", msg(&teamsv1.DeleteTeamRequest{City: "Gotham"}), auth},
		{"/teams.v1.TeamsService/DeleteTeam", msg(&teamsv1.DeleteTeamRequest{City: "Gotham"}), auth},
		{"/Teams/GetTeam", msg(&legacyteams.TeamRequest{City: "Detroit"}), nil},
		{"/Teams/GetTeam", msg(&legacyteams.TeamRequest{City: "Gotham"}), nil},
		{"/greeter.v1.GreeterService/SayHello", msg(&greeterv1.SayHelloRequest{Name: "Ada"}), nil},
		{"/greeter.v1.GreeterService/SayHelloAgain", msg(&greeterv1.SayHelloAgainRequest{Name: "Ada"}), nil},
		{"/helloworld.Greeter/SayHello", msg(&helloworld.HelloRequest{Name: "Ada"}), nil},
		{"/helloworld.Greeter/SayHelloAgain", msg(&helloworld.HelloRequest{Name: "Ada"}), nil},
		{"/routeguide.v1.RouteGuideService/GetFeature", msg(&routeguidev1.GetFeatureRequest{Latitude: 409146138, Longitude: -746188906}), nil},
		{"/routeguide.RouteGuide/GetFeature", msg(&legacyroute.Point{Latitude: 1, Longitude: 2}), nil},
		{"/summator.v1.SummatorService/Sum", msg(&summatorv1.SumRequest{Value1: 1.5, Value2: 2}), nil},
		{"/summator.v1.SummatorService/Sum", msg(&summatorv1.SumRequest{Value1: float32(math.Inf(1))}), nil},
		{"/keywords.v1.KeywordsService/GetKeywords", msg(&keywordsv1.GetKeywordsRequest{Text: "The quick brown fox jumps over the lazy dog."}), nil},
		{"/keywords.v1.KeywordsService/GetKeywords", envelope([]byte{0x0a, 0x01, 0xff}) /* text: invalid UTF-8 */, nil},
	}
	// A call's line is written just after its response: the next call
	// waits for it, so that the lines come in the calls' order.
	logged := func(n int) {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if strings.Count(directLogs.String(), "\n") >= n && strings.Count(connectLogs.String(), "\n") >= n {
				return
			}
		}
	}
	// Each request in each protocol the direct path serves: gRPC's
	// envelope, gRPC-Web's, Connect's bare message, and Connect's GET
	// with the message in the query (refused with 405 by the procedures
	// that have side effects, on both paths).
	same := func(b []byte) []byte { return b }
	protocols := []struct {
		contentType string
		header      []string
		body        func([]byte) []byte
		get         bool
	}{
		{"application/grpc", []string{"Te", "trailers"}, same, false},
		{"application/grpc-web+proto", nil, same, false},
		{"application/proto", []string{"Connect-Protocol-Version", "1"}, func(b []byte) []byte { return b[5:] }, false},
		{"", nil, func(b []byte) []byte { return b[5:] }, true},
		{"application/grpc-web-text", nil, func(b []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(b)) }, false},
	}
	calls := 0
	for _, p := range protocols {
		for _, r := range reqs {
			logged(calls)
			calls++
			header := http.Header{}
			if p.contentType != "" {
				header.Set("Content-Type", p.contentType)
			}
			for _, kv := range [][]string{p.header, r.header} {
				for i := 0; i+1 < len(kv); i += 2 {
					k, v := kv[i], kv[i+1]
					if k == "Grpc-Timeout" && (p.get || p.contentType == "application/proto") {
						k, v = "Connect-Timeout-Ms", "10000"
					}
					header.Set(k, v)
				}
			}
			method, path, body := http.MethodPost, r.path, p.body(r.body)
			if p.get {
				method, path = http.MethodGet, path+"?encoding=proto&base64=1&message="+base64.RawURLEncoding.EncodeToString(body)
				body = nil
			}
			want := testserver.Ask(viaConnect.HTTPClient, method, viaConnect.URL+path, header, body)
			got := testserver.Ask(direct.HTTPClient, method, direct.URL+path, header, body)
			if want.Err != "" || got.Err != "" {
				t.Fatalf("%s %s: call failed: connect-go %q, direct %q", method, path, want.Err, got.Err)
			}
			if p.contentType == "application/grpc-web-text" {
				// connect-go flushes between the message and the trailer
				// frame, and internal/grpcwebtext pads the base64 at each
				// flush; the direct path sends both in one padded run.
				// The frames must be the same.
				want.Body, got.Body = decodeWebText(t, want.Body), decodeWebText(t, got.Body)
			}
			if !got.Equal(want) {
				t.Errorf("%s %s %s %q: answers differ\nconnect-go: %v\ndirect:     %v", method, p.contentType, path, body, want, got)
			}
		}
	}
	// The per-call lines, without what differs from call to call.
	vary := regexp.MustCompile(`time=\S+ |duration=\S+ |peer=\S+ `)
	lines := func(logs *lockedBuffer) []string {
		var out []string
		for line := range strings.Lines(logs.String()) {
			out = append(out, vary.ReplaceAllString(line, ""))
		}
		return out
	}
	logged(calls)
	if got, want := lines(directLogs), lines(connectLogs); !slices.Equal(got, want) {
		t.Errorf("log lines differ\nconnect-go:\n%s\ndirect:\n%s", strings.Join(want, ""), strings.Join(got, ""))
	}
}

// decodeWebText decodes a gRPC-Web text body: base64 in runs, each padded
// at its end, back to back.
func decodeWebText(t *testing.T, body []byte) []byte {
	t.Helper()
	var out []byte
	for len(body) > 0 {
		n := len(body)
		if i := bytes.IndexByte(body, '='); i >= 0 {
			for n = i; n < len(body) && body[n] == '='; n++ {
			}
		}
		run, err := base64.StdEncoding.DecodeString(string(body[:n]))
		if err != nil {
			t.Fatalf("gRPC-Web text body %q: %v", body, err)
		}
		out, body = append(out, run...), body[n:]
	}
	return out
}
