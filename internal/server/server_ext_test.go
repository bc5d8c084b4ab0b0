package server_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/switchyard/switchyard/gen/greeter/v1/greeterv1connect"
	"github.com/switchyard/switchyard/gen/keywords/v1/keywordsv1connect"
	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	"github.com/switchyard/switchyard/gen/summator/v1/summatorv1connect"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/testserver"
)

// The tests of each service's behaviour through the whole server live with
// the service: services/<svc>/handler_ext_test.go (v1 and the tutorial's
// legacy names, in every protocol). This package tests the assembly: what
// is mounted (legacy_ext_test.go), bad input across every procedure and
// protocol (badinput_ext_test.go), deadlines (deadline_ext_test.go), grpc-go
// interop (grpcgo_ext_test.go), browsers (browser_ext_test.go), the fuzz
// targets of every unary procedure (fuzz_ext_test.go) and the transport.

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

// wholeMap covers every feature of the embedded database.
var wholeMap = &routeguidev1.ListFeaturesRequest{
	Lo: &routeguidev1.Point{Latitude: 400000000, Longitude: -750000000},
	Hi: &routeguidev1.Point{Latitude: 420000000, Longitude: -730000000},
}
