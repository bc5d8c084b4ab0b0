package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

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
	"github.com/switchyard/switchyard/internal/testserver"
)

// clients are the generated connect clients of every service for one protocol.
type clients struct {
	teams      teamsv1connect.TeamsServiceClient
	greeter    greeterv1connect.GreeterServiceClient
	routeguide routeguidev1connect.RouteGuideServiceClient
	keywords   keywordsv1connect.KeywordsServiceClient
	summator   summatorv1connect.SummatorServiceClient
}

func newClients(srv *testserver.Server, p testserver.Protocol) clients {
	return clients{
		teams:      teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL, p.Opts...),
		greeter:    greeterv1connect.NewGreeterServiceClient(srv.HTTPClient, srv.URL, p.Opts...),
		routeguide: routeguidev1connect.NewRouteGuideServiceClient(srv.HTTPClient, srv.URL, p.Opts...),
		keywords:   keywordsv1connect.NewKeywordsServiceClient(srv.HTTPClient, srv.URL, p.Opts...),
		summator:   summatorv1connect.NewSummatorServiceClient(srv.HTTPClient, srv.URL, p.Opts...),
	}
}

// forEachProtocol runs test once per protocol against one shared server.
func forEachProtocol(t *testing.T, srv *testserver.Server, test func(t *testing.T, c clients)) {
	t.Helper()
	for _, p := range testserver.Protocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			test(t, newClients(srv, p))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func wantCode(t *testing.T, err error, want connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); err == nil || got != want {
		t.Fatalf("error = %v (code %v), want code %v", err, got, want)
	}
}

func TestUnaryMethods(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	forEachProtocol(t, srv, func(t *testing.T, c clients) {
		team, err := c.teams.GetTeam(ctx(t), connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"}))
		if err != nil || team.Msg.GetCity() != "Chicago" || team.Msg.GetNickname() != "Jackals" {
			t.Errorf("GetTeam(Chicago) = %v, %v; want Chicago Jackals", team.Msg, err)
		}
		team, err = c.teams.GetTeam(ctx(t), connect.NewRequest(&teamsv1.GetTeamRequest{City: "  new york "}))
		if err != nil || team.Msg.GetCity() != "New York" || team.Msg.GetNickname() != "Metros" {
			t.Errorf("GetTeam(new york) = %v, %v; want New York Metros", team.Msg, err)
		}
		_, err = c.teams.GetTeam(ctx(t), connect.NewRequest(&teamsv1.GetTeamRequest{City: "Miami"}))
		wantCode(t, err, connect.CodeNotFound)
		_, err = c.teams.GetTeam(ctx(t), connect.NewRequest(&teamsv1.GetTeamRequest{City: " "}))
		wantCode(t, err, connect.CodeInvalidArgument)

		hello, err := c.greeter.SayHello(ctx(t), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "you"}))
		if err != nil || hello.Msg.GetMessage() != "Hello, you!" {
			t.Errorf("SayHello = %v, %v", hello.Msg, err)
		}
		again, err := c.greeter.SayHelloAgain(ctx(t), connect.NewRequest(&greeterv1.SayHelloAgainRequest{Name: "you"}))
		if err != nil || again.Msg.GetMessage() != "Hello again, you!" {
			t.Errorf("SayHelloAgain = %v, %v", again.Msg, err)
		}

		kw, err := c.keywords.GetKeywords(ctx(t), connect.NewRequest(&keywordsv1.GetKeywordsRequest{Text: "The quick brown fox, and the lazy dog!"}))
		if want := []string{"quick", "brown", "fox", "lazy", "dog"}; err != nil || !slices.Equal(kw.Msg.GetKeywords(), want) {
			t.Errorf("GetKeywords = %v, %v; want %v", kw.Msg.GetKeywords(), err, want)
		}

		sum, err := c.summator.Sum(ctx(t), connect.NewRequest(&summatorv1.SumRequest{Value1: 5, Value2: 3}))
		if err != nil || sum.Msg.GetValue() != 8 {
			t.Errorf("Sum(5, 3) = %v, %v", sum.Msg, err)
		}
		_, err = c.summator.Sum(ctx(t), connect.NewRequest(&summatorv1.SumRequest{Value1: float32(math.NaN()), Value2: 1}))
		wantCode(t, err, connect.CodeInvalidArgument)
		_, err = c.summator.Sum(ctx(t), connect.NewRequest(&summatorv1.SumRequest{Value1: math.MaxFloat32, Value2: math.MaxFloat32}))
		wantCode(t, err, connect.CodeOutOfRange)

		feature, err := c.routeguide.GetFeature(ctx(t), connect.NewRequest(&routeguidev1.GetFeatureRequest{Latitude: 409146138, Longitude: -746188906}))
		if err != nil || feature.Msg.GetName() != "Berkshire Valley Management Area Trail, Jefferson, NJ, USA" {
			t.Errorf("GetFeature(known) = %v, %v", feature.Msg, err)
		}
		feature, err = c.routeguide.GetFeature(ctx(t), connect.NewRequest(&routeguidev1.GetFeatureRequest{Latitude: 1, Longitude: 2}))
		if err != nil || feature.Msg.GetName() != "" || feature.Msg.GetLocation().GetLatitude() != 1 || feature.Msg.GetLocation().GetLongitude() != 2 {
			t.Errorf("GetFeature(unknown) = %v, %v; want nameless feature at (1, 2)", feature.Msg, err)
		}
		_, err = c.routeguide.GetFeature(ctx(t), connect.NewRequest(&routeguidev1.GetFeatureRequest{Latitude: 900000001}))
		wantCode(t, err, connect.CodeInvalidArgument)
	})
}

// wholeMap covers every feature of the embedded database.
var wholeMap = &routeguidev1.ListFeaturesRequest{
	Lo: &routeguidev1.Point{Latitude: 400000000, Longitude: -750000000},
	Hi: &routeguidev1.Point{Latitude: 420000000, Longitude: -730000000},
}

func TestServerStreaming(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	forEachProtocol(t, srv, func(t *testing.T, c clients) {
		for name, req := range map[string]*routeguidev1.ListFeaturesRequest{
			"lo/hi":         wholeMap,
			"swapped lo/hi": {Lo: wholeMap.GetHi(), Hi: wholeMap.GetLo()},
		} {
			stream, err := c.routeguide.ListFeatures(ctx(t), connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			var total, named int
			for stream.Receive() {
				total++
				if stream.Msg().GetName() != "" {
					named++
				}
			}
			if err := stream.Err(); err != nil || total != 100 || named != 64 {
				t.Errorf("%s: ListFeatures(whole map) = %d features (%d named), err %v; want 100 (64 named)", name, total, named, err)
			}
		}

		// A rectangle whose corners are exactly two features includes both.
		a := &routeguidev1.Point{Latitude: 407838351, Longitude: -746143763}
		b := &routeguidev1.Point{Latitude: 408122808, Longitude: -743999179}
		stream, err := c.routeguide.ListFeatures(ctx(t), connect.NewRequest(&routeguidev1.ListFeaturesRequest{Lo: a, Hi: b}))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for stream.Receive() {
			names = append(names, stream.Msg().GetName())
		}
		if err := stream.Err(); err != nil || !slices.Contains(names, "Patriots Path, Mendham, NJ 07945, USA") || !slices.Contains(names, "101 New Jersey 10, Whippany, NJ 07981, USA") {
			t.Errorf("ListFeatures(corner features) = %q, %v; want both corners included", names, err)
		}

		teamStream, err := c.teams.ListTeams(ctx(t), connect.NewRequest(&teamsv1.ListTeamsRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		var cities []string
		for teamStream.Receive() {
			cities = append(cities, teamStream.Msg().GetCity())
		}
		if err := teamStream.Err(); err != nil || len(cities) != 10 || !slices.IsSorted(cities) {
			t.Errorf("ListTeams = %q, %v; want the 10 tutorial cities in order", cities, err)
		}
	})
}

func TestListTeamsPaging(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	forEachProtocol(t, srv, func(t *testing.T, c clients) {
		var cities []string
		token := ""
		for page := 0; page < 10; page++ {
			stream, err := c.teams.ListTeams(ctx(t), connect.NewRequest(&teamsv1.ListTeamsRequest{PageSize: 4, PageToken: token}))
			if err != nil {
				t.Fatal(err)
			}
			token = ""
			n := 0
			for stream.Receive() {
				n++
				cities = append(cities, stream.Msg().GetCity())
				token = stream.Msg().GetNextPageToken()
			}
			if err := stream.Err(); err != nil || n > 4 {
				t.Fatalf("page %d: %d teams, %v", page, n, err)
			}
			if token == "" {
				break
			}
		}
		want := []string{"Arizona", "Boston", "Chicago", "Detroit", "Los Angeles", "Minneapolis", "New York", "Philadelphia", "San Francisco", "Seattle"}
		if !slices.Equal(cities, want) {
			t.Errorf("paged ListTeams = %q, want %q", cities, want)
		}

		stream, err := c.teams.ListTeams(ctx(t), connect.NewRequest(&teamsv1.ListTeamsRequest{CityPrefix: "s"}))
		if err != nil {
			t.Fatal(err)
		}
		cities = nil
		for stream.Receive() {
			cities = append(cities, stream.Msg().GetCity())
		}
		if want := []string{"San Francisco", "Seattle"}; stream.Err() != nil || !slices.Equal(cities, want) {
			t.Errorf("ListTeams(prefix s) = %q, %v; want %q", cities, stream.Err(), want)
		}

		for _, bad := range []*teamsv1.ListTeamsRequest{{PageSize: -1}, {PageToken: "not base64!"}} {
			stream, err := c.teams.ListTeams(ctx(t), connect.NewRequest(bad))
			if err == nil {
				for stream.Receive() {
				}
				err = stream.Err()
			}
			wantCode(t, err, connect.CodeInvalidArgument)
		}
	})
}

func TestClientStreaming(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	forEachProtocol(t, srv, func(t *testing.T, c clients) {
		// Five segments of 0.2° along the equator: each is 22238.98 m and is
		// truncated to 22238 before summing, 111190 in all.
		stream := c.routeguide.RecordRoute(ctx(t))
		for i := range int32(6) {
			if err := stream.Send(&routeguidev1.RecordRouteRequest{Longitude: i * 2000000}); err != nil {
				t.Fatal(err)
			}
		}
		// Two known features.
		for _, p := range []*routeguidev1.RecordRouteRequest{{Latitude: 407838351, Longitude: -746143763}, {Latitude: 408122808, Longitude: -743999179}} {
			if err := stream.Send(p); err != nil {
				t.Fatal(err)
			}
		}
		res, err := stream.CloseAndReceive()
		if err != nil {
			t.Fatal(err)
		}
		s := res.Msg
		// Segment 6 → 7 runs from (0, 1°) to Patriots Path and 7 → 8 between
		// the two features: 8801854.41 m and 18327.35 m (computed independently
		// with the haversine formula), truncated.
		wantDistance := int32(111190 + 8801854 + 18327)
		if s.GetPointCount() != 8 || s.GetFeatureCount() != 2 || s.GetDistance() != wantDistance || s.GetElapsedTime() != 0 {
			t.Errorf("RecordRoute = %v; want 8 points, 2 features, %d m, 0 s", s, wantDistance)
		}

		bad := c.routeguide.RecordRoute(ctx(t))
		_ = bad.Send(&routeguidev1.RecordRouteRequest{Latitude: -900000001})
		_, err = bad.CloseAndReceive()
		wantCode(t, err, connect.CodeInvalidArgument)
	})
}

func TestBidiStreaming(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	forEachProtocol(t, srv, func(t *testing.T, c clients) {
		// Each protocol chats at its own location so the parallel subtests
		// do not see each other's notes.
		loc := &routeguidev1.Point{Latitude: int32(len(t.Name())) * 1000, Longitude: int32(time.Now().UnixNano() % 1e6)}
		stream := c.routeguide.RouteChat(ctx(t))
		defer stream.CloseResponse()
		var got []string
		for i, msg := range []string{"first", "second", "third"} {
			if err := stream.Send(&routeguidev1.RouteChatRequest{Location: loc, Message: msg}); err != nil {
				t.Fatal(err)
			}
			// The answer to the i-th note is every note so far, in order.
			for range i + 1 {
				n, err := stream.Receive()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, n.GetMessage())
			}
		}
		if err := stream.CloseRequest(); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Receive(); !errors.Is(err, io.EOF) {
			t.Errorf("after CloseRequest: Receive() = %v, want io.EOF", err)
		}
		want := []string{"first", "first", "second", "first", "second", "third"}
		if !slices.Equal(got, want) {
			t.Errorf("RouteChat replies = %q, want %q", got, want)
		}
	})
}

// Two RouteChat streams open at once see each other's notes.
func TestRouteChatSharedBetweenStreams(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	c := newClients(srv, testserver.Protocols()[2]) // gRPC
	loc := &routeguidev1.Point{Latitude: 123, Longitude: 456}
	alice, bob := c.routeguide.RouteChat(ctx(t)), c.routeguide.RouteChat(ctx(t))
	defer alice.CloseResponse()
	defer bob.CloseResponse()

	send := func(s *connect.BidiStreamForClient[routeguidev1.RouteChatRequest, routeguidev1.RouteChatResponse], msg string, replies int) []string {
		t.Helper()
		if err := s.Send(&routeguidev1.RouteChatRequest{Location: loc, Message: msg}); err != nil {
			t.Fatal(err)
		}
		var got []string
		for range replies {
			n, err := s.Receive()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, n.GetMessage())
		}
		return got
	}
	if got := send(alice, "alice 1", 1); !slices.Equal(got, []string{"alice 1"}) {
		t.Errorf("alice's first replies = %q", got)
	}
	if got := send(bob, "bob 1", 2); !slices.Equal(got, []string{"alice 1", "bob 1"}) {
		t.Errorf("bob sees %q, want alice's note then his own", got)
	}
	if got := send(alice, "alice 2", 3); !slices.Equal(got, []string{"alice 1", "bob 1", "alice 2"}) {
		t.Errorf("alice sees %q, want all three notes", got)
	}

	// Many writers at once: every note is kept (within the bounds) and no
	// reply is torn.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			s := c.routeguide.RouteChat(ctx(t))
			defer s.CloseResponse()
			for i := range 10 {
				msg := fmt.Sprintf("w%d-%d", w, i)
				if err := s.Send(&routeguidev1.RouteChatRequest{Location: &routeguidev1.Point{Latitude: int32(w)}, Message: msg}); err != nil {
					t.Error(err)
					return
				}
				for j := range i + 1 {
					n, err := s.Receive()
					if err != nil || n.GetMessage() != fmt.Sprintf("w%d-%d", w, j) {
						t.Errorf("writer %d reply %d = %v, %v", w, j, n, err)
						return
					}
				}
			}
			_ = s.CloseRequest()
		})
	}
	wg.Wait()
}
