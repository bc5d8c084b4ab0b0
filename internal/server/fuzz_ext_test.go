package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	greeterv1 "github.com/switchyard/switchyard/gen/greeter/v1"
	"github.com/switchyard/switchyard/gen/greeter/v1/greeterv1connect"
	keywordsv1 "github.com/switchyard/switchyard/gen/keywords/v1"
	"github.com/switchyard/switchyard/gen/keywords/v1/keywordsv1connect"
	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	summatorv1 "github.com/switchyard/switchyard/gen/summator/v1"
	"github.com/switchyard/switchyard/gen/summator/v1/summatorv1connect"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/server"
)

// Fuzz targets for each unary procedure: arbitrary bytes as the request
// body, in the binary or the JSON codec, through the whole server handler
// (decoding, interceptors, the handler). Whatever comes in, the answer is a
// well-formed response or an error with a code the caller can act on, never
// INTERNAL or UNKNOWN, and never a panic.

const fuzzToken = "fuzz-admin-token"

// fuzzHandler is shared by a target's iterations (the team store keeps the
// fuzzer's writes, as a server would).
func fuzzHandler() http.Handler {
	return server.New(server.Config{
		AdminToken: fuzzToken,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}).Handler
}

// fuzzUnary sends data to procedure and checks the outcome; newResponse
// makes the message a success must decode into.
func fuzzUnary(f *testing.F, procedure string, newResponse func() proto.Message, allowed []connect.Code, seeds ...proto.Message) {
	h := fuzzHandler()
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		j, err := protojson.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(j, true)
	}
	f.Add([]byte{}, false)
	f.Add([]byte("{}"), true)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		contentType := "application/proto"
		if asJSON {
			contentType = "application/json"
		}
		req := httptest.NewRequest(http.MethodPost, procedure, bytes.NewReader(data))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+fuzzToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			res := newResponse()
			var err error
			if asJSON {
				err = protojson.Unmarshal(body, res)
			} else {
				err = proto.Unmarshal(body, res)
			}
			if err != nil {
				t.Fatalf("OK response %q does not decode: %v", body, err)
			}
			return
		}
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("HTTP %d with a body that is no Connect error: %q", rec.Code, body)
		}
		var code connect.Code
		if err := code.UnmarshalText([]byte(e.Code)); err != nil {
			t.Fatalf("unknown code %q", e.Code)
		}
		for _, a := range append(allowed, connect.CodeInvalidArgument, connect.CodeResourceExhausted) {
			if code == a {
				if e.Message == "" {
					t.Fatalf("%v without a message", code)
				}
				return
			}
		}
		t.Fatalf("%s answered %v (%q) to %q", procedure, code, e.Message, data)
	})
}

func FuzzGetTeam(f *testing.F) {
	fuzzUnary(f, teamsv1connect.TeamsServiceGetTeamProcedure, func() proto.Message { return &teamsv1.GetTeamResponse{} },
		[]connect.Code{connect.CodeNotFound}, &teamsv1.GetTeamRequest{City: "Chicago"}, &teamsv1.GetTeamRequest{City: "Miami"})
}

func FuzzPutTeam(f *testing.F) {
	fuzzUnary(f, teamsv1connect.TeamsServicePutTeamProcedure, func() proto.Message { return &teamsv1.PutTeamResponse{} },
		[]connect.Code{connect.CodeAlreadyExists, connect.CodeFailedPrecondition},
		&teamsv1.PutTeamRequest{City: "Miami", Nickname: "Sharks"})
}

func FuzzDeleteTeam(f *testing.F) {
	fuzzUnary(f, teamsv1connect.TeamsServiceDeleteTeamProcedure, func() proto.Message { return &teamsv1.DeleteTeamResponse{} },
		[]connect.Code{connect.CodeNotFound, connect.CodeFailedPrecondition}, &teamsv1.DeleteTeamRequest{City: "Boston"})
}

func FuzzSayHello(f *testing.F) {
	fuzzUnary(f, greeterv1connect.GreeterServiceSayHelloProcedure, func() proto.Message { return &greeterv1.SayHelloResponse{} },
		nil, &greeterv1.SayHelloRequest{Name: "you"})
}

func FuzzSayHelloAgain(f *testing.F) {
	fuzzUnary(f, greeterv1connect.GreeterServiceSayHelloAgainProcedure, func() proto.Message { return &greeterv1.SayHelloAgainResponse{} },
		nil, &greeterv1.SayHelloAgainRequest{Name: "you"})
}

func FuzzGetFeature(f *testing.F) {
	fuzzUnary(f, routeguidev1connect.RouteGuideServiceGetFeatureProcedure, func() proto.Message { return &routeguidev1.GetFeatureResponse{} },
		nil, &routeguidev1.GetFeatureRequest{Latitude: 409146138, Longitude: -746188906}, &routeguidev1.GetFeatureRequest{Latitude: 900000001})
}

func FuzzGetKeywords(f *testing.F) {
	fuzzUnary(f, keywordsv1connect.KeywordsServiceGetKeywordsProcedure, func() proto.Message { return &keywordsv1.GetKeywordsResponse{} },
		nil, &keywordsv1.GetKeywordsRequest{Text: "The quick brown fox, and the lazy dog!"})
}

func FuzzSum(f *testing.F) {
	fuzzUnary(f, summatorv1connect.SummatorServiceSumProcedure, func() proto.Message { return &summatorv1.SumResponse{} },
		[]connect.Code{connect.CodeOutOfRange}, &summatorv1.SumRequest{Value1: 5, Value2: 3}, &summatorv1.SumRequest{Value1: 3e38, Value2: 3e38})
}
