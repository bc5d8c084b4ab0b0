package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/grpchealth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/switchyard/switchyard/gen/greeter/v1"
	keywordsv1 "github.com/switchyard/switchyard/gen/keywords/v1"
	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	summatorv1 "github.com/switchyard/switchyard/gen/summator/v1"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/services/routeguide"
	"github.com/switchyard/switchyard/services/teams"
)

// These tests call the server with grpc-go, the reference gRPC
// implementation, over its own HTTP/2 transport.

func dialGRPC(t *testing.T, srv *testserver.Server) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestGRPCGoUnary(t *testing.T) {
	t.Parallel()
	conn := dialGRPC(t, testserver.Start(t, server.Config{}))
	tests := []struct {
		method   string
		req, res any
		check    func(res any) bool
		code     codes.Code
	}{
		{"/teams.v1.TeamsService/GetTeam", &teamsv1.GetTeamRequest{City: "Philadelphia"}, &teamsv1.GetTeamResponse{},
			func(r any) bool { return r.(*teamsv1.GetTeamResponse).GetNickname() == "Foxes" }, codes.OK},
		{"/teams.v1.TeamsService/GetTeam", &teamsv1.GetTeamRequest{City: "Miami"}, &teamsv1.GetTeamResponse{}, nil, codes.NotFound},
		{"/teams.v1.TeamsService/GetTeam", &teamsv1.GetTeamRequest{}, &teamsv1.GetTeamResponse{}, nil, codes.InvalidArgument},
		{"/greeter.v1.GreeterService/SayHello", &greeterv1.SayHelloRequest{Name: "you"}, &greeterv1.SayHelloResponse{},
			func(r any) bool { return r.(*greeterv1.SayHelloResponse).GetMessage() == "Hello, you!" }, codes.OK},
		{"/greeter.v1.GreeterService/SayHelloAgain", &greeterv1.SayHelloAgainRequest{Name: "you"}, &greeterv1.SayHelloAgainResponse{},
			func(r any) bool { return r.(*greeterv1.SayHelloAgainResponse).GetMessage() == "Hello again, you!" }, codes.OK},
		{"/keywords.v1.KeywordsService/GetKeywords", &keywordsv1.GetKeywordsRequest{Text: "I like it, very much"}, &keywordsv1.GetKeywordsResponse{},
			func(r any) bool {
				return slices.Equal(r.(*keywordsv1.GetKeywordsResponse).GetKeywords(), []string{"like", "it", "much"})
			}, codes.OK},
		{"/summator.v1.SummatorService/Sum", &summatorv1.SumRequest{Value1: 0.1, Value2: 0.2}, &summatorv1.SumResponse{},
			func(r any) bool { return r.(*summatorv1.SumResponse).GetValue() == float32(0.1)+float32(0.2) }, codes.OK},
		{"/routeguide.v1.RouteGuideService/GetFeature", &routeguidev1.GetFeatureRequest{Latitude: 407838351, Longitude: -746143763}, &routeguidev1.GetFeatureResponse{},
			func(r any) bool {
				return r.(*routeguidev1.GetFeatureResponse).GetName() == "Patriots Path, Mendham, NJ 07945, USA"
			}, codes.OK},
		{"/no.such.Service/Method", &teamsv1.GetTeamRequest{}, &teamsv1.GetTeamResponse{}, nil, codes.Unimplemented},
	}
	for _, tt := range tests {
		err := conn.Invoke(ctx(t), tt.method, tt.req, tt.res)
		if got := status.Code(err); got != tt.code {
			t.Errorf("%s(%v): code %v (%v), want %v", tt.method, tt.req, got, err, tt.code)
			continue
		}
		if tt.check != nil && !tt.check(tt.res) {
			t.Errorf("%s(%v) = %v", tt.method, tt.req, tt.res)
		}
	}
}

// An unknown method or service gets grpc-go's own answer: UNIMPLEMENTED
// with a message naming the method and service, not an HTTP 404 that
// grpc-go reports as a transport error. Over internal/h2 and net/http's
// HTTP/2 server alike.
func TestGRPCGoUnknownProcedure(t *testing.T) {
	t.Parallel()
	for _, std := range []bool{false, true} {
		conn := dialGRPC(t, testserver.StartWith(t, server.Config{}, testserver.Options{HTTP: server.HTTPConfig{StdHTTP2: std}}))
		for method, want := range map[string]string{
			"/teams.v1.TeamsService/GetTeams": "unknown method GetTeams for service teams.v1.TeamsService; it has DeleteTeam, GetTeam, ListTeams, PutTeam",
			"/Teams/PutTeam":                  "unknown method PutTeam for service Teams; it has GetTeam",
			"/no.such.Service/Method":         "unknown service no.such.Service; this server serves ",
			"/no.such.Service/Method/More":    "unknown service no.such.Service; this server serves ",
			"/Method":                         "the path /Method names no procedure (/package.Service/Method); this server serves ",
			"/teams.v1.TeamsService":          "the path names service teams.v1.TeamsService but no method; it has DeleteTeam, GetTeam",
			"/grpc.health.v1.Health":          "the path names service grpc.health.v1.Health but no method; it has Check, Watch",
		} {
			err := conn.Invoke(ctx(t), method, &teamsv1.GetTeamRequest{City: "Chicago"}, &teamsv1.GetTeamResponse{})
			if st := status.Convert(err); st.Code() != codes.Unimplemented || !strings.HasPrefix(st.Message(), want) {
				t.Errorf("net/http %v: %s: %v, want UNIMPLEMENTED %q", std, method, err, want)
			}
		}
		stream, err := conn.NewStream(ctx(t), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/routeguide.v1.RouteGuideService/RouteChatter")
		if err == nil {
			err = stream.RecvMsg(&routeguidev1.RouteChatResponse{})
		}
		if st := status.Convert(err); st.Code() != codes.Unimplemented || !strings.HasPrefix(st.Message(), "unknown method RouteChatter for service routeguide.v1.RouteGuideService; it has GetFeature, ListFeatures, RecordRoute, RouteChat") {
			t.Errorf("net/http %v: a stream of an unknown method: %v", std, err)
		}
	}
}

func TestGRPCGoStreaming(t *testing.T) {
	t.Parallel()
	conn := dialGRPC(t, testserver.Start(t, server.Config{}))

	t.Run("server", func(t *testing.T) {
		s, err := conn.NewStream(ctx(t), &grpc.StreamDesc{ServerStreams: true}, "/routeguide.v1.RouteGuideService/ListFeatures")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SendMsg(wholeMap); err != nil {
			t.Fatal(err)
		}
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			var f routeguidev1.ListFeaturesResponse
			if err := s.RecvMsg(&f); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 100 {
			t.Errorf("ListFeatures streamed %d features, want 100", n)
		}
	})

	t.Run("client", func(t *testing.T) {
		s, err := conn.NewStream(ctx(t), &grpc.StreamDesc{ClientStreams: true}, "/routeguide.v1.RouteGuideService/RecordRoute")
		if err != nil {
			t.Fatal(err)
		}
		for _, lat := range []int32{0, 10000000} { // 1° of latitude: 111194.93 m
			if err := s.SendMsg(&routeguidev1.RecordRouteRequest{Latitude: lat}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		var sum routeguidev1.RecordRouteResponse
		if err := s.RecvMsg(&sum); err != nil {
			t.Fatal(err)
		}
		if sum.GetPointCount() != 2 || sum.GetDistance() != 111194 {
			t.Errorf("RecordRoute = %v, want 2 points, 111194 m", &sum)
		}
	})

	t.Run("bidi", func(t *testing.T) {
		s, err := conn.NewStream(ctx(t), &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, "/routeguide.v1.RouteGuideService/RouteChat")
		if err != nil {
			t.Fatal(err)
		}
		loc := &routeguidev1.Point{Latitude: 77, Longitude: 88}
		for i, msg := range []string{"one", "two"} {
			if err := s.SendMsg(&routeguidev1.RouteChatRequest{Location: loc, Message: msg}); err != nil {
				t.Fatal(err)
			}
			for range i + 1 {
				var n routeguidev1.RouteChatResponse
				if err := s.RecvMsg(&n); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		var n routeguidev1.RouteChatResponse
		if err := s.RecvMsg(&n); !errors.Is(err, io.EOF) {
			t.Errorf("after CloseSend: RecvMsg = %v, want io.EOF", err)
		}
	})

	t.Run("server stream of teams", func(t *testing.T) {
		s, err := conn.NewStream(ctx(t), &grpc.StreamDesc{ServerStreams: true}, "/teams.v1.TeamsService/ListTeams")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SendMsg(&teamsv1.ListTeamsRequest{CityPrefix: "los"}); err != nil {
			t.Fatal(err)
		}
		_ = s.CloseSend()
		var team teamsv1.ListTeamsResponse
		if err := s.RecvMsg(&team); err != nil || team.GetNickname() != "Pumas" {
			t.Fatalf("ListTeams(los) first = %v, %v", &team, err)
		}
		if err := s.RecvMsg(&team); !errors.Is(err, io.EOF) {
			t.Errorf("ListTeams(los) second = %v, want io.EOF", err)
		}
	})
}

func TestGRPCGoHealthAndReflection(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	conn := dialGRPC(t, srv)

	health := healthpb.NewHealthClient(conn)
	for _, svc := range append([]string{""}, srv.Services...) {
		res, err := health.Check(ctx(t), &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check(%q) = %v, %v; want SERVING", svc, res, err)
		}
	}
	_, err := health.Check(ctx(t), &healthpb.HealthCheckRequest{Service: "no.such.Service"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("Check(unknown) = %v, want NotFound", err)
	}
	srv.Health.SetStatus("teams.v1.TeamsService", grpchealth.StatusNotServing)
	res, err := health.Check(ctx(t), &healthpb.HealthCheckRequest{Service: "teams.v1.TeamsService"})
	if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("after SetStatus: Check = %v, %v; want NOT_SERVING", res, err)
	}

	refl, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	listed, err := refl.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range listed.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{
		"teams.v1.TeamsService", "greeter.v1.GreeterService", "routeguide.v1.RouteGuideService",
		"keywords.v1.KeywordsService", "summator.v1.SummatorService", "grpc.health.v1.Health",
		"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %q, missing %s", names, want)
		}
	}
	// Every listed service can be described, with its documentation.
	if err := refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "teams.v1.TeamsService"}}); err != nil {
		t.Fatal(err)
	}
	file, err := refl.Recv()
	if err != nil || len(file.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Errorf("FileContainingSymbol(teams.v1.TeamsService) = %v, %v", file, err)
	}
	_ = refl.CloseSend()
}

// attempts counts the attempts of a grpc-go client's calls: one Begin
// each.
type attempts struct{ n atomic.Int32 }

// retryingClient is a grpc-go client of srv with the service config sc
// (its retry policy), counting its attempts.
func retryingClient(t *testing.T, srv *testserver.Server, sc string) (*grpc.ClientConn, *attempts) {
	t.Helper()
	a := &attempts{}
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(sc), grpc.WithStatsHandler(a))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, a
}

func (a *attempts) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (a *attempts) HandleRPC(_ context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.Begin); ok {
		a.n.Add(1)
	}
}
func (a *attempts) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (a *attempts) HandleConn(context.Context, stats.ConnStats)                       {}

// A call that fails before its first message is answered as gRPC's
// Trailers-Only response (one HEADERS frame that ends the stream), as
// grpc-go's server answers it: gRPC clients retry under a service
// config's retryPolicy only a call whose answer was Trailers-Only (gRFC
// A6: response headers commit the call), so with headers and trailers
// apart no UNAVAILABLE the server answers, "retry it", would ever be
// retried. internal/h2 only: net/http's server cannot send it.
func TestGRPCGoRetryPolicyRetriesAnImmediateError(t *testing.T) {
	t.Parallel()
	const sc = `{"methodConfig":[{"name":[{}],"retryPolicy":{"maxAttempts":3,"initialBackoff":"0.01s","maxBackoff":"0.01s","backoffMultiplier":1,"retryableStatusCodes":["INVALID_ARGUMENT","UNIMPLEMENTED","NOT_FOUND"]}}]}`
	for _, connectOnly := range []bool{false, true} {
		srv := testserver.Start(t, server.Config{ConnectOnly: connectOnly})
		conn, a := retryingClient(t, srv, sc)
		for _, tt := range []struct {
			method string
			req    any
			code   codes.Code
		}{
			{"/teams.v1.TeamsService/GetTeam", &teamsv1.GetTeamRequest{}, codes.InvalidArgument},
			{"/teams.v1.TeamsService/GetTeam", &teamsv1.GetTeamRequest{City: "Miami"}, codes.NotFound},
			{"/teams.v1.TeamsService/GetTeams", &teamsv1.GetTeamRequest{}, codes.Unimplemented},
		} {
			a.n.Store(0)
			var err error
			if tt.code == codes.Unimplemented {
				// An unknown procedure is answered on its headers, as
				// grpc-go's server answers it; a unary call's message may
				// then find its stream closed, and grpc-go's last attempt
				// reports that send's io.EOF ("max retries exhausted:
				// failed after 3 attempts: EOF"), not the answer. A stream
				// that sends nothing receives the answer every time.
				var s grpc.ClientStream
				s, err = conn.NewStream(ctx(t), &grpc.StreamDesc{ClientStreams: true}, tt.method)
				if err == nil {
					err = s.RecvMsg(&teamsv1.GetTeamResponse{})
				}
			} else {
				err = conn.Invoke(ctx(t), tt.method, tt.req, &teamsv1.GetTeamResponse{})
			}
			if got := status.Code(err); got != tt.code {
				t.Errorf("ConnectOnly %v: %s(%v): %v, want %v", connectOnly, tt.method, tt.req, err, tt.code)
			}
			if n := a.n.Load(); n != 3 {
				t.Errorf("ConnectOnly %v: %s(%v): %d attempts, want 3 (the retry policy's maxAttempts)", connectOnly, tt.method, tt.req, n)
			}
		}
	}
}

// madeButUnsure is a team directory whose writes are made but answered
// as a database cut off mid-commit answers them: they may have been made.
type madeButUnsure struct{ *teams.MemStore }

func (s madeButUnsure) Put(ctx context.Context, t teams.Team) (teams.Team, bool, error) {
	_, _, _ = s.MemStore.Put(ctx, t)
	return teams.Team{}, false, fmt.Errorf("%w: %w: COMMIT's answer lost", teams.ErrUnavailable, teams.ErrMaybeMade)
}

func (s madeButUnsure) Delete(ctx context.Context, city string) (teams.Team, error) {
	_, _ = s.MemStore.Delete(ctx, city)
	return teams.Team{}, fmt.Errorf("%w: %w: COMMIT's answer lost", teams.ErrUnavailable, teams.ErrMaybeMade)
}

// keptButUnsure keeps RouteChat notes but answers as a store whose
// COMMIT's answer was lost.
type keptButUnsure struct{ kept atomic.Int32 }

func (s *keptButUnsure) Add(context.Context, routeguide.Note) ([]routeguide.Note, error) {
	s.kept.Add(1)
	return nil, fmt.Errorf("%w: %w: COMMIT's answer lost", routeguide.ErrNoteMaybeKept, routeguide.ErrNotesUnavailable)
}

// An answer that the write may have been made is UNAVAILABLE, which a
// retry policy may list, but a retry would make the write again (a
// RouteChat note twice) or answer as if it had not been made (a
// DeleteTeam's NOT_FOUND): it carries grpc-retry-pushback-ms -1, and
// grpc-go's retry policy makes one attempt.
func TestGRPCGoRetryPolicyLeavesMaybeMadeWrites(t *testing.T) {
	t.Parallel()
	const sc = `{"methodConfig":[{"name":[{}],"retryPolicy":{"maxAttempts":3,"initialBackoff":"0.01s","maxBackoff":"0.01s","backoffMultiplier":1,"retryableStatusCodes":["UNAVAILABLE"]}}]}`
	for _, connectOnly := range []bool{false, true} {
		notes := &keptButUnsure{}
		srv := testserver.Start(t, server.Config{
			ConnectOnly: connectOnly,
			Teams:       madeButUnsure{teams.NewMemStore([]teams.Team{{City: "Chicago", Nickname: "Jackals"}})},
			AdminToken:  "tok",
			RouteGuide:  routeguide.Options{SharedNotes: notes},
		})
		conn, a := retryingClient(t, srv, sc)
		auth := metadata.AppendToOutgoingContext(ctx(t), "authorization", "Bearer tok")
		for _, tt := range []struct {
			method   string
			req, res any
		}{
			{"/teams.v1.TeamsService/PutTeam", &teamsv1.PutTeamRequest{City: "Miami", Nickname: "Sharks"}, &teamsv1.PutTeamResponse{}},
			{"/teams.v1.TeamsService/DeleteTeam", &teamsv1.DeleteTeamRequest{City: "Chicago"}, &teamsv1.DeleteTeamResponse{}},
		} {
			a.n.Store(0)
			err := conn.Invoke(auth, tt.method, tt.req, tt.res)
			if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "may have been made") {
				t.Errorf("ConnectOnly %v: %s: %v, want UNAVAILABLE saying it may have been made", connectOnly, tt.method, err)
			}
			if n := a.n.Load(); n != 1 {
				t.Errorf("ConnectOnly %v: %s: %d attempts, want 1", connectOnly, tt.method, n)
			}
		}
		a.n.Store(0)
		chat, err := conn.NewStream(ctx(t), &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, "/routeguide.v1.RouteGuideService/RouteChat")
		if err != nil {
			t.Fatal(err)
		}
		if err := chat.SendMsg(&routeguidev1.RouteChatRequest{Location: &routeguidev1.Point{Latitude: 1, Longitude: 2}, Message: "once"}); err != nil {
			t.Fatal(err)
		}
		_ = chat.CloseSend()
		if err := chat.RecvMsg(&routeguidev1.RouteChatResponse{}); status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), "may have been kept") {
			t.Errorf("ConnectOnly %v: RouteChat: %v, want UNAVAILABLE saying the note may have been kept", connectOnly, err)
		}
		if n, kept := a.n.Load(), notes.kept.Load(); n != 1 || kept != 1 {
			t.Errorf("ConnectOnly %v: RouteChat: %d attempts, the note kept %d times; want 1 and 1", connectOnly, n, kept)
		}
	}
}
