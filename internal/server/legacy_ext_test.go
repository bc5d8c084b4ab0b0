package server_test

import (
	"errors"
	"io"
	"math"
	"slices"
	"testing"

	"connectrpc.com/connect"

	"github.com/switchyard/switchyard/gen/legacy/helloworld"
	"github.com/switchyard/switchyard/gen/legacy/helloworld/helloworldconnect"
	legacykeywords "github.com/switchyard/switchyard/gen/legacy/keywords"
	"github.com/switchyard/switchyard/gen/legacy/keywords/keywordsconnect"
	legacyroute "github.com/switchyard/switchyard/gen/legacy/routeguide"
	"github.com/switchyard/switchyard/gen/legacy/routeguide/routeguideconnect"
	legacysummator "github.com/switchyard/switchyard/gen/legacy/summator"
	"github.com/switchyard/switchyard/gen/legacy/summator/summatorconnect"
	legacyteams "github.com/switchyard/switchyard/gen/legacy/teams"
	"github.com/switchyard/switchyard/gen/legacy/teams/teamsconnect"
	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// The tutorials' procedure names, in every protocol, through the generated
// connect clients of the tutorial protos.

func TestLegacyUnary(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	for _, p := range testserver.Protocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			teams := teamsconnect.NewTeamsClient(srv.HTTPClient, srv.URL, p.Opts...)
			for city, want := range map[string]string{"Chicago": "Jackals", "Philadelphia": "Foxes", "Miami": "not a member", " boston ": "Revolutionaries"} {
				res, err := teams.GetTeam(ctx(t), connect.NewRequest(&legacyteams.TeamRequest{City: city}))
				if err != nil || res.Msg.GetCity() != city || res.Msg.GetNickname() != want {
					t.Errorf("/Teams/GetTeam(%q) = %v, %v; want %q %q", city, res.Msg, err, city, want)
				}
			}
			_, err := teams.GetTeam(ctx(t), connect.NewRequest(&legacyteams.TeamRequest{City: " "}))
			wantCode(t, err, connect.CodeInvalidArgument)

			greeter := helloworldconnect.NewGreeterClient(srv.HTTPClient, srv.URL, p.Opts...)
			hello, err := greeter.SayHello(ctx(t), connect.NewRequest(&helloworld.HelloRequest{Name: "you"}))
			if err != nil || hello.Msg.GetMessage() != "Hello, you!" {
				t.Errorf("SayHello = %v, %v", hello.Msg, err)
			}
			again, err := greeter.SayHelloAgain(ctx(t), connect.NewRequest(&helloworld.HelloRequest{Name: "you"}))
			if err != nil || again.Msg.GetMessage() != "Hello again, you!" {
				t.Errorf("SayHelloAgain = %v, %v", again.Msg, err)
			}

			kw := keywordsconnect.NewKeywordServiceClient(srv.HTTPClient, srv.URL, p.Opts...)
			words, err := kw.GetKeywords(ctx(t), connect.NewRequest(&legacykeywords.Request{Text: "I like it, very much"}))
			if err != nil || !slices.Equal(words.Msg.GetKeywords(), []string{"like", "it", "much"}) {
				t.Errorf("GetKeywords = %v, %v", words.Msg, err)
			}

			sum := summatorconnect.NewSummatorClient(srv.HTTPClient, srv.URL, p.Opts...)
			eight, err := sum.Sum(ctx(t), connect.NewRequest(&legacysummator.Number1{Value1: 5, Value2: 3}))
			if err != nil || eight.Msg.GetValue() != 8 {
				t.Errorf("/Summator/sum(5, 3) = %v, %v", eight.Msg, err)
			}
			_, err = sum.Sum(ctx(t), connect.NewRequest(&legacysummator.Number1{Value1: math.MaxFloat32, Value2: math.MaxFloat32}))
			wantCode(t, err, connect.CodeOutOfRange)
		})
	}
}

func TestLegacyRouteGuide(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	for i, p := range testserver.Protocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			rg := routeguideconnect.NewRouteGuideClient(srv.HTTPClient, srv.URL, p.Opts...)

			f, err := rg.GetFeature(ctx(t), connect.NewRequest(&legacyroute.Point{Latitude: 409146138, Longitude: -746188906}))
			if err != nil || f.Msg.GetName() != "Berkshire Valley Management Area Trail, Jefferson, NJ, USA" {
				t.Errorf("GetFeature = %v, %v", f.Msg, err)
			}
			f, err = rg.GetFeature(ctx(t), connect.NewRequest(&legacyroute.Point{Latitude: 1, Longitude: 2}))
			if err != nil || f.Msg.GetName() != "" || f.Msg.GetLocation().GetLongitude() != 2 {
				t.Errorf("GetFeature(unknown) = %v, %v; want a nameless feature at the point", f.Msg, err)
			}
			_, err = rg.GetFeature(ctx(t), connect.NewRequest(&legacyroute.Point{Latitude: 900000001}))
			wantCode(t, err, connect.CodeInvalidArgument)

			list, err := rg.ListFeatures(ctx(t), connect.NewRequest(&legacyroute.Rectangle{
				Lo: &legacyroute.Point{Latitude: 400000000, Longitude: -750000000},
				Hi: &legacyroute.Point{Latitude: 420000000, Longitude: -730000000},
			}))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for list.Receive() {
				n++
			}
			if err := list.Err(); err != nil || n != 100 {
				t.Errorf("ListFeatures streamed %d features (%v), want 100 (the example's rectangle holds every feature)", n, err)
			}

			rec := rg.RecordRoute(ctx(t))
			for _, lat := range []int32{0, 10000000} {
				if err := rec.Send(&legacyroute.Point{Latitude: lat}); err != nil {
					t.Fatal(err)
				}
			}
			summary, err := rec.CloseAndReceive()
			if err != nil || summary.Msg.GetPointCount() != 2 || summary.Msg.GetDistance() != 111194 {
				t.Errorf("RecordRoute = %v, %v; want 2 points, 111194 m", summary.Msg, err)
			}

			// A location of its own per protocol: notes are shared server-wide.
			loc := &legacyroute.Point{Latitude: 12345, Longitude: int32(i)}
			chat := rg.RouteChat(ctx(t))
			for k, msg := range []string{"first", "second"} {
				if err := chat.Send(&legacyroute.RouteNote{Location: loc, Message: msg}); err != nil {
					t.Fatal(err)
				}
				for range k + 1 {
					if _, err := chat.Receive(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := chat.CloseRequest(); err != nil {
				t.Fatal(err)
			}
			if _, err := chat.Receive(); !errors.Is(err, io.EOF) {
				t.Errorf("after CloseRequest: %v, want io.EOF", err)
			}
			_ = chat.CloseResponse()
		})
	}
}

// One implementation serves both names: a note left through the tutorial's
// RouteChat is among the notes routeguide.v1 returns at that location.
func TestLegacyAndV1ShareRouteChat(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	loc := &legacyroute.Point{Latitude: 424242, Longitude: 434343}

	legacy := routeguideconnect.NewRouteGuideClient(srv.HTTPClient, srv.URL).RouteChat(ctx(t))
	if err := legacy.Send(&legacyroute.RouteNote{Location: loc, Message: "via the tutorial name"}); err != nil {
		t.Fatal(err)
	}
	if _, err := legacy.Receive(); err != nil {
		t.Fatal(err)
	}
	_ = legacy.CloseRequest()
	_ = legacy.CloseResponse()

	v1 := newClients(srv, testserver.Protocols()[0]).routeguide.RouteChat(ctx(t))
	if err := v1.Send(&routeguidev1.RouteChatRequest{Location: &routeguidev1.Point{Latitude: loc.GetLatitude(), Longitude: loc.GetLongitude()}, Message: "via v1"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 2 {
		n, err := v1.Receive()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n.GetMessage())
	}
	_ = v1.CloseRequest()
	_ = v1.CloseResponse()
	if !slices.Equal(got, []string{"via the tutorial name", "via v1"}) {
		t.Errorf("v1 RouteChat returned %q, want the legacy note then its own", got)
	}
}

func TestLegacyNamesAreServed(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	for _, want := range []string{"Teams", "helloworld.Greeter", "routeguide.RouteGuide", "KeywordService", "Summator"} {
		if !slices.Contains(srv.Services, want) {
			t.Errorf("services %q: missing %s (health and reflection list what is mounted)", srv.Services, want)
		}
	}
}
