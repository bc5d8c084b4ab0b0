package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"

	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/telemetry"
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

// BenchmarkGetTeamTelemetry is BenchmarkGetTeam over gRPC with the
// telemetry the binary can turn on: metrics (-admin-addr), and tracing
// configured with its sampler off (OTEL_TRACES_SAMPLER=always_off), and
// with every call sampled. BenchmarkGetTeam/grpc is all of it off (the
// per-call log line only).
func BenchmarkGetTeamTelemetry(b *testing.B) {
	for _, tc := range []struct {
		name    string
		sampler string // "": no tracing
	}{{"metrics", ""}, {"metrics+tracing-sampler-off", "always_off"}, {"metrics+tracing-sampled", "always_on"}} {
		b.Run(tc.name, func(b *testing.B) {
			var tracing *telemetry.Tracing
			if tc.sampler != "" {
				collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
				defer collector.Close()
				env := map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL, "OTEL_TRACES_SAMPLER": tc.sampler}
				var err error
				if tracing, err = telemetry.TracingFromEnv(context.Background(), func(k string) string { return env[k] }); err != nil {
					b.Fatal(err)
				}
			}
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			tel, err := telemetry.New(telemetry.Options{Logger: logger, Metrics: true, Tracing: tracing})
			if err != nil {
				b.Fatal(err)
			}
			defer tel.Shutdown(context.Background())
			srv := testserver.Start(b, server.Config{Logger: logger, Telemetry: tel})
			client := teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL, connect.WithGRPC())
			req := connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.GetTeam(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
