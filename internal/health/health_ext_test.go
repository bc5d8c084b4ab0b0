package health_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/health" // grpc-go's client-side health checking
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/switchyard/switchyard/gen/greeter/v1"
	"github.com/switchyard/switchyard/gen/greeter/v1/greeterv1connect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

const teams = "teams.v1.TeamsService"

// watcher is one Watch call's stream.
type watcher struct {
	t      *testing.T
	stream *connect.ServerStreamForClient[healthpb.HealthCheckResponse]
}

func watch(t *testing.T, srv *testserver.Server, p testserver.Protocol, service string) watcher {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	client := connect.NewClient[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse](
		srv.HTTPClient, srv.URL+"/grpc.health.v1.Health/Watch", p.Opts...)
	stream, err := client.CallServerStream(ctx, connect.NewRequest(&healthpb.HealthCheckRequest{Service: service}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stream.Close() })
	return watcher{t, stream}
}

// next expects the stream's next status to be want.
func (w watcher) next(want healthpb.HealthCheckResponse_ServingStatus) {
	w.t.Helper()
	if !w.stream.Receive() {
		w.t.Fatalf("stream ended (%v), want %v", w.stream.Err(), want)
	}
	if got := w.stream.Msg().GetStatus(); got != want {
		w.t.Fatalf("status %v, want %v", got, want)
	}
}

// Watch, in every protocol: the current status at once, then each change
// (a status set again is no change); a service not registered is
// SERVICE_UNKNOWN until it is; the server as a whole ("") is SERVING.
func TestWatch(t *testing.T) {
	t.Parallel()
	for _, p := range testserver.Protocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			srv := testserver.Start(t, server.Config{})
			w := watch(t, srv, p, teams)
			w.next(healthpb.HealthCheckResponse_SERVING)
			srv.Health.SetStatus(teams, grpchealth.StatusNotServing)
			w.next(healthpb.HealthCheckResponse_NOT_SERVING)
			srv.Health.SetStatus(teams, grpchealth.StatusNotServing)
			srv.Health.SetStatus("greeter.v1.GreeterService", grpchealth.StatusNotServing)
			srv.Health.SetStatus(teams, grpchealth.StatusServing)
			w.next(healthpb.HealthCheckResponse_SERVING)

			later := watch(t, srv, p, "later.v1.Service")
			later.next(healthpb.HealthCheckResponse_SERVICE_UNKNOWN)
			srv.Health.SetStatus("later.v1.Service", grpchealth.StatusServing)
			later.next(healthpb.HealthCheckResponse_SERVING)

			watch(t, srv, p, "").next(healthpb.HealthCheckResponse_SERVING)
		})
	}
}

// Close ends every watch once it has sent the latest status, with code
// unavailable, and later watches at once, with nothing sent (so that
// grpc-go's client backs off before it tries again): a graceful shutdown
// is not held by them. Check still answers.
func TestCloseEndsWatches(t *testing.T) {
	t.Parallel()
	for _, p := range testserver.Protocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			srv := testserver.Start(t, server.Config{})
			w := watch(t, srv, p, "")
			w.next(healthpb.HealthCheckResponse_SERVING)
			srv.Health.SetStatus("", grpchealth.StatusNotServing)
			srv.Health.Close()
			w.next(healthpb.HealthCheckResponse_NOT_SERVING)
			for _, w := range []watcher{w, watch(t, srv, p, "")} {
				if w.stream.Receive() {
					t.Fatalf("a message after Close: %v", w.stream.Msg())
				}
				if code := connect.CodeOf(w.stream.Err()); code != connect.CodeUnavailable {
					t.Errorf("watch ended with %v, want unavailable", w.stream.Err())
				}
			}
			res, err := srv.Health.Check(t.Context(), &grpchealth.CheckRequest{Service: teams})
			if err != nil || res.Status != grpchealth.StatusServing {
				t.Errorf("Check after Close = %v, %v", res, err)
			}
		})
	}
}

// A watch whose client goes away ends; the server keeps no stream for it
// (graceful shutdown would wait for one).
func TestWatchEndsWithItsClient(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	p := testserver.Protocols()[2] // grpc
	ctx, cancel := context.WithCancel(t.Context())
	client := connect.NewClient[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse](
		srv.HTTPClient, srv.URL+"/grpc.health.v1.Health/Watch", p.Opts...)
	stream, err := client.CallServerStream(ctx, connect.NewRequest(&healthpb.HealthCheckRequest{}))
	if err != nil || !stream.Receive() {
		t.Fatalf("Watch: %v, %v", err, stream.Err())
	}
	cancel()
	_ = stream.Close()
	shutdown, stop := context.WithTimeout(t.Context(), 5*time.Second)
	defer stop()
	if err := srv.HTTPServer.Shutdown(shutdown); err != nil {
		t.Errorf("shutdown after the watch's client left: %v", err)
	}
}

// grpc-go's client-side health checking (a service config's
// healthCheckConfig) watches the server's health: a server reporting
// NOT_SERVING gets no more calls from it, until it is SERVING again. With
// Watch unimplemented, grpc-go takes the server as healthy for good.
func TestGRPCGoClientSideHealthChecking(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":""}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	call := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		var res greeterv1.SayHelloResponse
		return conn.Invoke(ctx, greeterv1connect.GreeterServiceSayHelloProcedure, &greeterv1.SayHelloRequest{Name: "health"}, &res)
	}
	// until calls until ok(err), for at most 5 s.
	until := func(what string, ok func(error) bool) {
		t.Helper()
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if err = call(); ok(err) {
				return
			}
		}
		t.Fatalf("%s: still %v after 5 s", what, err)
	}
	until("serving", func(err error) bool { return err == nil })
	srv.Health.SetStatus("", grpchealth.StatusNotServing)
	until("not serving", func(err error) bool { return status.Code(err) == codes.Unavailable })
	srv.Health.SetStatus("", grpchealth.StatusServing)
	until("serving again", func(err error) bool { return err == nil })
}
