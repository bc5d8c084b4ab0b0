//go:build e2e

package e2e

import (
	"encoding/json"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// unaryCall is one unary call and its expected answer: a JSON response (as
// grpcurl and buf curl print it) or a gRPC status code name.
type unaryCall struct {
	name    string
	method  string // "pkg.Service/Method"
	request string
	header  string // one extra "name: value" header, if any
	want    string // expected response JSON; empty when code is set
	code    string // expected gRPC code name (grpcurl's "Code: NotFound")
}

var bearer = "authorization: Bearer " + adminToken

// unaryCalls call every unary method served, v1 and the tutorials' names,
// in order (PutTeam before DeleteTeam).
var unaryCalls = []unaryCall{
	{name: "v1 GetTeam", method: "teams.v1.TeamsService/GetTeam", request: `{"city":"Chicago"}`, want: `{"city":"Chicago","nickname":"Jackals"}`},
	{name: "v1 GetTeam unknown city", method: "teams.v1.TeamsService/GetTeam", request: `{"city":"Miami"}`, code: "NotFound"},
	{name: "v1 GetTeam empty city", method: "teams.v1.TeamsService/GetTeam", request: `{}`, code: "InvalidArgument"},
	{name: "v1 PutTeam without token", method: "teams.v1.TeamsService/PutTeam", request: `{"city":"Grpcurl Town","nickname":"Curlers"}`, code: "Unauthenticated"},
	{name: "v1 PutTeam", method: "teams.v1.TeamsService/PutTeam", request: `{"city":"Grpcurl Town","nickname":"Curlers"}`, header: bearer,
		want: `{"city":"Grpcurl Town","nickname":"Curlers","created":true}`},
	{name: "v1 DeleteTeam", method: "teams.v1.TeamsService/DeleteTeam", request: `{"city":"grpcurl town"}`, header: bearer,
		want: `{"city":"Grpcurl Town","nickname":"Curlers"}`},
	{name: "v1 SayHello", method: "greeter.v1.GreeterService/SayHello", request: `{"name":"you"}`, want: `{"message":"Hello, you!"}`},
	{name: "v1 SayHelloAgain", method: "greeter.v1.GreeterService/SayHelloAgain", request: `{"name":"you"}`, want: `{"message":"Hello again, you!"}`},
	{name: "v1 GetFeature", method: "routeguide.v1.RouteGuideService/GetFeature", request: `{"latitude":409146138,"longitude":-746188906}`,
		want: `{"name":"Berkshire Valley Management Area Trail, Jefferson, NJ, USA","location":{"latitude":409146138,"longitude":-746188906}}`},
	{name: "v1 GetKeywords", method: "keywords.v1.KeywordsService/GetKeywords", request: `{"text":"I like it, very much"}`, want: `{"keywords":["like","it","much"]}`},
	{name: "v1 Sum", method: "summator.v1.SummatorService/Sum", request: `{"value1":5,"value2":3}`, want: `{"value":8}`},
	{name: "v1 Sum overflow", method: "summator.v1.SummatorService/Sum", request: `{"value1":3e38,"value2":3e38}`, code: "OutOfRange"},
	{name: "legacy Teams/GetTeam", method: "Teams/GetTeam", request: `{"city":"Philadelphia"}`, want: `{"city":"Philadelphia","nickname":"Foxes"}`},
	{name: "legacy Teams/GetTeam unknown city", method: "Teams/GetTeam", request: `{"city":"Miami"}`, want: `{"city":"Miami","nickname":"not a member"}`},
	{name: "legacy Teams/GetTeam empty city", method: "Teams/GetTeam", request: `{"city":""}`, code: "InvalidArgument"},
	{name: "legacy helloworld.Greeter/SayHello", method: "helloworld.Greeter/SayHello", request: `{"name":"you"}`, want: `{"message":"Hello, you!"}`},
	{name: "legacy helloworld.Greeter/SayHelloAgain", method: "helloworld.Greeter/SayHelloAgain", request: `{"name":"you"}`, want: `{"message":"Hello again, you!"}`},
	{name: "legacy routeguide.RouteGuide/GetFeature", method: "routeguide.RouteGuide/GetFeature", request: `{"latitude":1,"longitude":2}`,
		want: `{"location":{"latitude":1,"longitude":2}}`},
	{name: "legacy KeywordService/GetKeywords", method: "KeywordService/GetKeywords", request: `{"text":"The quick brown fox"}`, want: `{"keywords":["quick","brown","fox"]}`},
	{name: "legacy Summator/sum", method: "Summator/sum", request: `{"value1":5,"value2":3}`, want: `{"value":8}`},
	{name: "health Check", method: "grpc.health.v1.Health/Check", request: `{"service":"Teams"}`, want: `{"status":"SERVING"}`},
}

// allServices is what reflection must list.
var allServices = []string{
	"KeywordService", "Summator", "Teams", "greeter.v1.GreeterService", "grpc.health.v1.Health",
	"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", "helloworld.Greeter",
	"keywords.v1.KeywordsService", "routeguide.RouteGuide", "routeguide.v1.RouteGuideService",
	"summator.v1.SummatorService", "teams.v1.TeamsService",
}

func sameJSON(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("response\n%s\nwant %s", got, want)
	}
}

func TestGrpcurl(t *testing.T) {
	t.Run("list", func(t *testing.T) {
		out := mustRun(t, "", "grpcurl", "-plaintext", addr, "list")
		listed := strings.Fields(out)
		for _, want := range allServices {
			if !slices.Contains(listed, want) {
				t.Errorf("grpcurl list: %s missing from\n%s", want, out)
			}
		}
	})
	describes := map[string][]string{
		"Teams":                      {"service Teams {", "rpc GetTeam ( .TeamRequest ) returns ( .TeamResponse );"},
		"teams.v1.TeamsService":      {"rpc ListTeams ( .teams.v1.ListTeamsRequest ) returns ( stream .teams.v1.ListTeamsResponse )"},
		"routeguide.RouteGuide":      {"rpc RouteChat ( stream .routeguide.RouteNote ) returns ( stream .routeguide.RouteNote );"},
		"Summator":                   {"rpc sum ( .Number1 ) returns ( .Number2 );"},
		"teams.v1.GetTeamRequest":    {"string city = 1;"},
		"routeguide.RouteSummary":    {"int32 elapsed_time = 4;"},
		"KeywordService.GetKeywords": {"rpc GetKeywords ( .Request ) returns ( .Response );"},
		// gRPC's own services are described too, by their real names.
		"grpc.health.v1.Health":               {"rpc Watch ( .grpc.health.v1.HealthCheckRequest ) returns ( stream .grpc.health.v1.HealthCheckResponse );"},
		"grpc.reflection.v1.ServerReflection": {"rpc ServerReflectionInfo ( stream .grpc.reflection.v1.ServerReflectionRequest ) returns ( stream .grpc.reflection.v1.ServerReflectionResponse );"},
		// Comments come with the descriptors.
		"teams.v1.TeamsService.GetTeam": {"// GetTeam returns the team that plays in one city."},
	}
	for symbol, wants := range describes {
		t.Run("describe "+symbol, func(t *testing.T) {
			out := mustRun(t, "", "grpcurl", "-plaintext", addr, "describe", symbol)
			for _, want := range wants {
				if !strings.Contains(out, want) {
					t.Errorf("grpcurl describe %s: no %q in\n%s", symbol, want, out)
				}
			}
		})
	}
	for _, c := range unaryCalls {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"-plaintext", "-d", c.request}
			if c.header != "" {
				args = append(args, "-H", c.header)
			}
			res := run(t, "", "grpcurl", append(args, addr, c.method)...)
			checkUnary(t, c, res)
		})
	}
	t.Run("tutorial command without a request body", func(t *testing.T) {
		// The tutorial's `grpcurl -plaintext localhost:50051 Teams/GetTeam`:
		// reflection resolves the name, and the empty city is answered with
		// the shared validation error rather than an unknown-method one.
		res := run(t, "", "grpcurl", "-plaintext", addr, "Teams/GetTeam")
		if res.exitCode != 64+3 || !strings.Contains(res.stderr, "Code: InvalidArgument") || !strings.Contains(res.stderr, "city is empty") {
			t.Errorf("exit status %d, stderr:\n%s\nwant INVALID_ARGUMENT (exit 67) about the empty city", res.exitCode, res.stderr)
		}
	})
	t.Run("server stream ListFeatures", func(t *testing.T) {
		out := mustRun(t, "", "grpcurl", "-plaintext", "-d",
			`{"lo":{"latitude":400000000,"longitude":-750000000},"hi":{"latitude":420000000,"longitude":-730000000}}`,
			addr, "routeguide.RouteGuide/ListFeatures")
		if msgs := jsonStream(t, out); len(msgs) != 100 {
			t.Errorf("ListFeatures streamed %d features, want 100", len(msgs))
		}
	})
	t.Run("server stream ListTeams", func(t *testing.T) {
		out := mustRun(t, "", "grpcurl", "-plaintext", "-d", `{"city_prefix":"s"}`, addr, "teams.v1.TeamsService/ListTeams")
		msgs := jsonStream(t, out)
		if len(msgs) != 2 || msgs[0]["nickname"] != "Stingers" || msgs[1]["nickname"] != "Orcas" {
			t.Errorf("ListTeams(s) = %v, want San Francisco Stingers, Seattle Orcas", msgs)
		}
	})
}

// checkUnary checks a grpcurl or buf curl result against c.
func checkUnary(t *testing.T, c unaryCall, res result) {
	t.Helper()
	if c.code == "" {
		if res.exitCode != 0 {
			t.Fatalf("exit status %d, want 0\nstderr:\n%s", res.exitCode, res.stderr)
		}
		sameJSON(t, res.stdout, c.want)
		return
	}
	if res.exitCode == 0 {
		t.Fatalf("exit status 0, want the error %s\nstdout:\n%s", c.code, res.stdout)
	}
	if !strings.Contains(res.stderr+res.stdout, c.code) && !strings.Contains(res.stderr+res.stdout, snake(c.code)) {
		t.Errorf("error output does not name %s:\n%s%s", c.code, res.stderr, res.stdout)
	}
}

// snake is a gRPC code name as the Connect protocol spells it.
func snake(code string) string {
	var b strings.Builder
	for i, r := range code {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func TestBufCurl(t *testing.T) {
	for _, protocol := range []string{"grpc", "grpcweb", "connect"} {
		t.Run(protocol, func(t *testing.T) {
			for _, c := range unaryCalls {
				if c.header != "" || strings.HasPrefix(c.method, "grpc.health") {
					continue // writes and health are grpcurl's; reads cover buf curl's protocols
				}
				t.Run(c.name, func(t *testing.T) {
					res := run(t, "", "buf", "curl", "--http2-prior-knowledge", "--protocol", protocol,
						"-d", c.request, baseURL+"/"+c.method)
					checkUnary(t, c, res)
				})
			}
			t.Run("server stream ListTeams", func(t *testing.T) {
				out := mustRun(t, "", "buf", "curl", "--http2-prior-knowledge", "--protocol", protocol,
					"-d", `{"city_prefix":"new"}`, baseURL+"/teams.v1.TeamsService/ListTeams")
				msgs := jsonStream(t, out)
				if len(msgs) != 1 || msgs[0]["city"] != "New York" || msgs[0]["nickname"] != "Metros" {
					t.Errorf("ListTeams(new) = %v, want New York Metros", msgs)
				}
			})
			t.Run("server stream ListFeatures", func(t *testing.T) {
				out := mustRun(t, "", "buf", "curl", "--http2-prior-knowledge", "--protocol", protocol, "-d",
					`{"lo":{"latitude":407000000,"longitude":-747000000},"hi":{"latitude":408000000,"longitude":-746000000}}`,
					baseURL+"/routeguide.v1.RouteGuideService/ListFeatures")
				msgs := jsonStream(t, out)
				if len(msgs) == 0 || len(msgs) == 100 {
					t.Errorf("ListFeatures of a small rectangle streamed %d features", len(msgs))
				}
			})
		})
	}
}

func TestCurl(t *testing.T) {
	need(t, "curl")
	type curlCase struct {
		name     string
		args     []string
		want     string
		wantHTTP string
	}
	get := func(procedure, message string) []string {
		return []string{"--get", "--data-urlencode", "encoding=json", "--data-urlencode", "message=" + message, baseURL + procedure}
	}
	post := func(procedure, message string) []string {
		return []string{"-H", "Content-Type: application/json", "-d", message, baseURL + procedure}
	}
	cases := []curlCase{
		{"Connect POST GetTeam", post("/teams.v1.TeamsService/GetTeam", `{"city":"Chicago"}`), `{"city":"Chicago","nickname":"Jackals"}`, "200"},
		{"Connect POST legacy Teams/GetTeam", post("/Teams/GetTeam", `{"city":"Miami"}`), `{"city":"Miami","nickname":"not a member"}`, "200"},
		{"Connect POST legacy Summator/sum", post("/Summator/sum", `{"value1":5,"value2":3}`), `{"value":8}`, "200"},
		{"Connect POST error", post("/teams.v1.TeamsService/GetTeam", `{"city":"Miami"}`), `{"code":"not_found","message":"no team plays in \"Miami\""}`, "404"},
		{"Connect GET GetTeam", get("/teams.v1.TeamsService/GetTeam", `{"city":"Chicago"}`), `{"city":"Chicago","nickname":"Jackals"}`, "200"},
		{"Connect GET GetKeywords", get("/keywords.v1.KeywordsService/GetKeywords", `{"text":"I like it, very much"}`), `{"keywords":["like","it","much"]}`, "200"},
		{"Connect GET base64 proto Sum", []string{"--get", "--data-urlencode", "encoding=proto", "--data-urlencode", "base64=1",
			// SumRequest{value1: 5, value2: 3} in the protobuf binary format.
			"--data-urlencode", "message=DQAAoEAVAABAQA", baseURL + "/summator.v1.SummatorService/Sum"}, "\x0d\x00\x00\x00\x41", "200"},
		{"Connect GET error", get("/teams.v1.TeamsService/GetTeam", `{"city":""}`), "", "400"},
		{"unknown procedure", post("/no.Such/Method", `{}`), "", "404"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := run(t, "", "curl", append([]string{"-sS", "-w", "\n%{http_code}"}, c.args...)...)
			if res.exitCode != 0 {
				t.Fatalf("curl exit status %d: %s", res.exitCode, res.stderr)
			}
			i := strings.LastIndex(res.stdout, "\n")
			body, status := res.stdout[:max(i, 0)], res.stdout[i+1:]
			if status != c.wantHTTP {
				t.Errorf("HTTP status %s, want %s; body %s", status, c.wantHTTP, body)
			}
			switch {
			case strings.HasPrefix(c.want, "{"):
				sameJSON(t, body, c.want)
			case body != c.want && c.want != "":
				t.Errorf("body %q, want %q", body, c.want) // SumResponse{value: 8} in binary
			}
		})
	}
	t.Run("Connect GET is refused for a method with side effects", func(t *testing.T) {
		// Legacy protos carry no idempotency option, so GET is not offered.
		u := baseURL + "/Teams/GetTeam?" + url.Values{"encoding": {"json"}, "message": {`{"city":"Chicago"}`}}.Encode()
		res := run(t, "", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", u)
		if res.stdout == "200" {
			t.Errorf("GET %s answered 200; only NO_SIDE_EFFECTS methods accept GET", u)
		}
	})
}
