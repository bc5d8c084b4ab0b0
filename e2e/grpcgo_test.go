//go:build e2e

package e2e

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard/switchyard/gen/legacy/helloworld"
	legacykeywords "github.com/switchyard/switchyard/gen/legacy/keywords"
	legacyroute "github.com/switchyard/switchyard/gen/legacy/routeguide"
	legacysummator "github.com/switchyard/switchyard/gen/legacy/summator"
	legacyteams "github.com/switchyard/switchyard/gen/legacy/teams"
)

// The tutorials' procedure names called by grpc-go, the reference gRPC
// implementation the tutorials' Go clients are built on, with the messages
// generated from the tutorial protos. (gen/ has no grpc-go stubs on purpose,
// so that importing the message packages does not pull grpc-go into an SDK
// user's build; Invoke and NewStream are what such stubs call.)

func dial(t *testing.T) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGRPCGoLegacyUnary(t *testing.T) {
	conn := dial(t)
	tests := []struct {
		name     string
		method   string
		req      proto.Message
		res      proto.Message
		want     proto.Message
		wantCode codes.Code
	}{
		{"Teams/GetTeam Chicago", "/Teams/GetTeam", &legacyteams.TeamRequest{City: "Chicago"}, new(legacyteams.TeamResponse),
			&legacyteams.TeamResponse{City: "Chicago", Nickname: "Jackals"}, codes.OK},
		{"Teams/GetTeam Miami", "/Teams/GetTeam", &legacyteams.TeamRequest{City: "Miami"}, new(legacyteams.TeamResponse),
			&legacyteams.TeamResponse{City: "Miami", Nickname: "not a member"}, codes.OK},
		{"Teams/GetTeam empty", "/Teams/GetTeam", &legacyteams.TeamRequest{}, new(legacyteams.TeamResponse), nil, codes.InvalidArgument},
		{"helloworld.Greeter/SayHello", "/helloworld.Greeter/SayHello", &helloworld.HelloRequest{Name: "you"}, new(helloworld.HelloReply),
			&helloworld.HelloReply{Message: "Hello, you!"}, codes.OK},
		{"helloworld.Greeter/SayHelloAgain", "/helloworld.Greeter/SayHelloAgain", &helloworld.HelloRequest{Name: "you"}, new(helloworld.HelloReply),
			&helloworld.HelloReply{Message: "Hello again, you!"}, codes.OK},
		{"KeywordService/GetKeywords", "/KeywordService/GetKeywords", &legacykeywords.Request{Text: "I like it, very much"}, new(legacykeywords.Response),
			&legacykeywords.Response{Keywords: []string{"like", "it", "much"}}, codes.OK},
		{"Summator/sum", "/Summator/sum", &legacysummator.Number1{Value1: 5, Value2: 3}, new(legacysummator.Number2),
			&legacysummator.Number2{Value: 8}, codes.OK},
		{"Summator/sum overflow", "/Summator/sum", &legacysummator.Number1{Value1: 3e38, Value2: 3e38}, new(legacysummator.Number2), nil, codes.OutOfRange},
		{"routeguide.RouteGuide/GetFeature", "/routeguide.RouteGuide/GetFeature", &legacyroute.Point{Latitude: 409146138, Longitude: -746188906}, new(legacyroute.Feature),
			&legacyroute.Feature{Name: "Berkshire Valley Management Area Trail, Jefferson, NJ, USA", Location: &legacyroute.Point{Latitude: 409146138, Longitude: -746188906}}, codes.OK},
		{"routeguide.RouteGuide/GetFeature unknown point", "/routeguide.RouteGuide/GetFeature", &legacyroute.Point{}, new(legacyroute.Feature),
			&legacyroute.Feature{Location: &legacyroute.Point{}}, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := conn.Invoke(callCtx(t), tt.method, tt.req, tt.res)
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code %v (%v), want %v", got, err, tt.wantCode)
			}
			if tt.want != nil && !proto.Equal(tt.res, tt.want) {
				t.Errorf("response %v, want %v", tt.res, tt.want)
			}
		})
	}
}

// TestGRPCGoLegacyRouteGuide runs the four RPC kinds as grpc-go's
// route_guide client does.
func TestGRPCGoLegacyRouteGuide(t *testing.T) {
	conn := dial(t)

	t.Run("ListFeatures server stream", func(t *testing.T) {
		s, err := conn.NewStream(callCtx(t), &grpc.StreamDesc{ServerStreams: true}, "/routeguide.RouteGuide/ListFeatures")
		if err != nil {
			t.Fatal(err)
		}
		rect := &legacyroute.Rectangle{
			Lo: &legacyroute.Point{Latitude: 400000000, Longitude: -750000000},
			Hi: &legacyroute.Point{Latitude: 420000000, Longitude: -730000000},
		}
		if err := s.SendMsg(rect); err != nil {
			t.Fatal(err)
		}
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		var named int
		for {
			var f legacyroute.Feature
			if err := s.RecvMsg(&f); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			if f.GetName() != "" {
				named++
			}
		}
		if named != 64 {
			t.Errorf("ListFeatures streamed %d named features, want 64", named)
		}
	})

	t.Run("RecordRoute client stream", func(t *testing.T) {
		s, err := conn.NewStream(callCtx(t), &grpc.StreamDesc{ClientStreams: true}, "/routeguide.RouteGuide/RecordRoute")
		if err != nil {
			t.Fatal(err)
		}
		// A known feature, then two unnamed points one degree of latitude
		// (111194 m) apart.
		points := []*legacyroute.Point{
			{Latitude: 409146138, Longitude: -746188906},
			{Latitude: 0, Longitude: 0},
			{Latitude: 10000000, Longitude: 0},
		}
		for _, p := range points {
			if err := s.SendMsg(p); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		var sum legacyroute.RouteSummary
		if err := s.RecvMsg(&sum); err != nil {
			t.Fatal(err)
		}
		if sum.GetPointCount() != 3 || sum.GetFeatureCount() != 1 || sum.GetDistance() <= 111194 {
			t.Errorf("RecordRoute = %v, want 3 points, 1 feature, more than 111194 m", &sum)
		}
	})

	t.Run("RouteChat bidi stream", func(t *testing.T) {
		s, err := conn.NewStream(callCtx(t), &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, "/routeguide.RouteGuide/RouteChat")
		if err != nil {
			t.Fatal(err)
		}
		// A location no other test writes to.
		loc := &legacyroute.Point{Latitude: -314159, Longitude: 271828}
		var got []string
		for i, msg := range []string{"First message", "Second message"} {
			if err := s.SendMsg(&legacyroute.RouteNote{Location: loc, Message: msg}); err != nil {
				t.Fatal(err)
			}
			for range i + 1 {
				var n legacyroute.RouteNote
				if err := s.RecvMsg(&n); err != nil {
					t.Fatal(err)
				}
				got = append(got, n.GetMessage())
			}
		}
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		var n legacyroute.RouteNote
		if err := s.RecvMsg(&n); !errors.Is(err, io.EOF) {
			t.Errorf("after CloseSend: %v, want io.EOF", err)
		}
		if want := []string{"First message", "First message", "Second message"}; !slices.Equal(got, want) {
			t.Errorf("RouteChat replies %q, want %q", got, want)
		}
	})
}
