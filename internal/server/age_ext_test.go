package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// Connection rebalancing (-max-connection-age, -max-connection-age-grace)
// with a real grpc-go client connected directly, over h2c and TLS: unary
// calls keep succeeding while connections age out (GOAWAY, then a new
// connection), a stream gets the grace and is then ended UNAVAILABLE, and the server
// accepts new connections as the old ones age.
func TestMaxConnectionAge(t *testing.T) {
	const age, grace = 300 * time.Millisecond, 700 * time.Millisecond
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			srv := testserver.StartWith(t, server.Config{}, testserver.Options{TLS: useTLS,
				HTTP: server.HTTPConfig{MaxConnectionAge: age, MaxConnectionAgeGrace: grace}})
			var dials atomic.Int32
			creds := insecure.NewCredentials()
			if useTLS {
				creds = credentials.NewTLS(&tls.Config{RootCAs: srv.CertPool, ServerName: "127.0.0.1"})
			}
			conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(creds),
				grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
					dials.Add(1)
					return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				}))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()

			// A stream opened now runs past the age, through the grace.
			stream, err := conn.NewStream(ctx(t), &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, "/routeguide.v1.RouteGuideService/RouteChat")
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			notes := int32(0)
			chat := func() error { // a note at a fresh location: one reply
				notes++
				loc := &routeguidev1.Point{Latitude: 1, Longitude: notes}
				if err := stream.SendMsg(&routeguidev1.RouteChatRequest{Location: loc, Message: "note"}); err != nil {
					return err
				}
				var reply routeguidev1.RouteChatResponse
				return stream.RecvMsg(&reply)
			}
			if err := chat(); err != nil {
				t.Fatalf("RouteChat before the age: %v", err)
			}

			// Unary calls every 10 ms for four ages: every one succeeds.
			calls := 0
			for time.Since(start) < 4*age {
				var res teamsv1.GetTeamResponse
				if err := conn.Invoke(ctx(t), "/teams.v1.TeamsService/GetTeam", &teamsv1.GetTeamRequest{City: "Chicago"}, &res); err != nil {
					t.Fatalf("GetTeam %d at %v: %v", calls, time.Since(start).Round(time.Millisecond), err)
				}
				calls++
				if time.Since(start) > age*11/10+100*time.Millisecond && time.Since(start) < age*9/10+grace-100*time.Millisecond {
					// Past the stream's connection's age, within its grace.
					if err := chat(); err != nil {
						t.Fatalf("RouteChat within the grace (%v): %v", time.Since(start).Round(time.Millisecond), err)
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
			if n := dials.Load(); n < 3 {
				t.Errorf("%d TCP connections over %v with connections aging at %v, want 3 or more", n, 4*age, age)
			}
			// By now (4 ages > the age + grace) the stream has been ended,
			// with an answer: UNAVAILABLE saying so, not a cut connection
			// (which grpc-go would report as Unavailable too, but
			// connect-go as a protocol error).
			var reply routeguidev1.RouteChatResponse
			err = stream.RecvMsg(&reply)
			if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "the server ended the call") {
				t.Errorf("the stream after age + grace: %v, want Unavailable saying the server ended the call", err)
			}
			t.Logf("%d unary calls over %d connections; stream ended with %v", calls, dials.Load(), err)
		})
	}
}

// HTTP/1.1 connections past their age end with their next response,
// which carries Connection: close: a client's keep-alive requests go on
// over new connections, none of them failed by a close it could not see
// coming (a POST, which a client or proxy cannot retry).
func TestMaxConnectionAgeHTTP1(t *testing.T) {
	const age = 200 * time.Millisecond
	srv := testserver.StartWith(t, server.Config{}, testserver.Options{HTTP: server.HTTPConfig{MaxConnectionAge: age}})
	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	post := srv.URL + "/keywords.v1.KeywordsService/GetKeywords"
	start := time.Now()
	closes := 0
	for time.Since(start) < 5*age {
		res, err := client.Post(post, "application/json", strings.NewReader(`{"text":"quick brown fox"}`))
		if err != nil {
			t.Fatalf("POST at %v: %v", time.Since(start).Round(time.Millisecond), err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.ProtoMajor != 1 || !strings.Contains(string(body), "quick") {
			t.Fatalf("%s %d %s", res.Proto, res.StatusCode, body)
		}
		if res.Close {
			closes++
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := dials.Load(); n < 3 {
		t.Errorf("%d HTTP/1.1 connections over %v with connections aging at %v, want 3 or more", n, 5*age, age)
	}
	if n := dials.Load(); closes < int(n)-1 {
		t.Errorf("%d responses with Connection: close over %d connections, want one for each connection but the last", closes, n)
	}
}
