package server_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"connectrpc.com/connect"

	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// The benchmarks make full calls over a real loopback HTTP/2 connection,
// client included, with the per-call log line written (to io.Discard).
// Allocation counts are tracked in BENCHMARKS.md; the side-by-side
// comparison with grpc-go is `make bench`.

func benchServer(b *testing.B) *testserver.Server {
	b.Helper()
	return testserver.Start(b, server.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func BenchmarkGetTeam(b *testing.B) {
	srv := benchServer(b)
	for _, p := range testserver.Protocols() {
		b.Run(p.Name, func(b *testing.B) {
			client := teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL, p.Opts...)
			req := connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"})
			b.ReportAllocs()
			for b.Loop() {
				res, err := client.GetTeam(context.Background(), req)
				if err != nil || res.Msg.GetNickname() != "Jackals" {
					b.Fatalf("GetTeam: %v %v", res, err)
				}
			}
		})
	}
}

func BenchmarkGetTeamParallel(b *testing.B) {
	srv := benchServer(b)
	client := teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL, connect.WithGRPC())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"})
		for pb.Next() {
			if _, err := client.GetTeam(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkListFeaturesWholeMap(b *testing.B) {
	srv := benchServer(b)
	client := routeguidev1connect.NewRouteGuideServiceClient(srv.HTTPClient, srv.URL, connect.WithGRPC())
	req := connect.NewRequest(&routeguidev1.ListFeaturesRequest{
		Lo: &routeguidev1.Point{Latitude: -900000000, Longitude: -1800000000},
		Hi: &routeguidev1.Point{Latitude: 900000000, Longitude: 1800000000},
	})
	b.ReportAllocs()
	for b.Loop() {
		stream, err := client.ListFeatures(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for stream.Receive() {
			n++
		}
		if err := stream.Err(); err != nil || n != 100 {
			b.Fatalf("%d features, %v", n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100, "ns/msg")
}
