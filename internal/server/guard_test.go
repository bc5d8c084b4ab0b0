package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	greeterv1 "github.com/switchyard/switchyard/gen/greeter/v1"
	"github.com/switchyard/switchyard/gen/greeter/v1/greeterv1connect"
	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
)

// These tests mount misbehaving handlers behind the server's real handler
// options (they are internal tests for that reason: nothing public lets a
// caller mount arbitrary handlers) and call them over real h2c connections.

// misbehaving is a greeter whose SayHello panics, returns a raw internal
// error or waits for its context, chosen by the name it is sent; its
// SayHelloAgain answers normally.
type misbehaving struct {
	// ended receives how long each waiting call ran until its context ended.
	ended chan time.Duration
}

func (m *misbehaving) SayHello(ctx context.Context, req *connect.Request[greeterv1.SayHelloRequest]) (*connect.Response[greeterv1.SayHelloResponse], error) {
	switch req.Msg.GetName() {
	case "panic":
		panic("secret panic value at /srv/switchyard/internal.go:42")
	case "raw error":
		return nil, fmt.Errorf("sql: open /var/lib/switchyard/teams.db: permission denied")
	case "wait":
		start := time.Now()
		<-ctx.Done()
		m.ended <- time.Since(start)
		return nil, ctx.Err()
	}
	return connect.NewResponse(&greeterv1.SayHelloResponse{Message: "ok"}), nil
}

func (m *misbehaving) SayHelloAgain(_ context.Context, req *connect.Request[greeterv1.SayHelloAgainRequest]) (*connect.Response[greeterv1.SayHelloAgainResponse], error) {
	return connect.NewResponse(&greeterv1.SayHelloAgainResponse{Message: "again " + req.Msg.GetName()}), nil
}

// endlessFeatures streams ListFeatures until the caller goes away, and
// panics in RouteChat.
type endlessFeatures struct {
	routeguidev1connect.UnimplementedRouteGuideServiceHandler
	ended chan time.Duration
}

func (e *endlessFeatures) ListFeatures(ctx context.Context, _ *connect.Request[routeguidev1.ListFeaturesRequest], stream *connect.ServerStream[routeguidev1.ListFeaturesResponse]) error {
	cancelled := make(chan time.Time, 1)
	context.AfterFunc(ctx, func() { cancelled <- time.Now() })
	defer func() {
		select {
		case at := <-cancelled:
			e.ended <- time.Since(at)
		default: // stopped before the context ended
			e.ended <- 0
		}
	}()
	for {
		if err := stream.Send(&routeguidev1.ListFeaturesResponse{Name: "again"}); err != nil {
			return err
		}
	}
}

func (e *endlessFeatures) RouteChat(context.Context, *connect.BidiStream[routeguidev1.RouteChatRequest, routeguidev1.RouteChatResponse]) error {
	panic("stream panic")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type guardServer struct {
	url    string
	client *http.Client
	log    *syncBuffer
	greet  *misbehaving
	route  *endlessFeatures
}

func startGuardServer(t *testing.T, cfg Config) *guardServer {
	t.Helper()
	g := &guardServer{
		log:   &syncBuffer{},
		greet: &misbehaving{ended: make(chan time.Duration, 16)},
		route: &endlessFeatures{ended: make(chan time.Duration, 16)},
	}
	cfg.Logger = slog.New(slog.NewTextHandler(g.log, nil))
	// The real options, on a mux of our own.
	s := &Server{mux: http.NewServeMux(), opts: New(cfg).opts}
	s.mount(greeterv1connect.NewGreeterServiceHandler(g.greet, s.opts...))
	s.mount(routeguidev1connect.NewRouteGuideServiceHandler(g.route, s.opts...))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := NewHTTPServer(s.mux, HTTPConfig{}, cfg.Logger)
	go func() { _ = hs.Serve(ln) }()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	g.client = &http.Client{Transport: tr}
	g.url = "http://" + ln.Addr().String()
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		_ = hs.Close()
	})
	return g
}

var protocols = map[string][]connect.ClientOption{
	"connect": nil,
	"grpc":    {connect.WithGRPC()},
	"grpcweb": {connect.WithGRPCWeb()},
}

func TestPanicIsInternalForThatCallOnly(t *testing.T) {
	t.Parallel()
	g := startGuardServer(t, Config{})
	for name, opts := range protocols {
		t.Run(name, func(t *testing.T) {
			greeter := greeterv1connect.NewGreeterServiceClient(g.client, g.url, opts...)
			route := routeguidev1connect.NewRouteGuideServiceClient(g.client, g.url, opts...)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			for range 3 {
				_, err := greeter.SayHello(ctx, connect.NewRequest(&greeterv1.SayHelloRequest{Name: "panic"}))
				if connect.CodeOf(err) != connect.CodeInternal {
					t.Fatalf("panicking SayHello: %v, want INTERNAL", err)
				}
				if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), ".go") {
					t.Errorf("the panic leaks to the client: %v", err)
				}
				// The same connection serves the next call.
				res, err := greeter.SayHelloAgain(ctx, connect.NewRequest(&greeterv1.SayHelloAgainRequest{Name: "x"}))
				if err != nil || res.Msg.GetMessage() != "again x" {
					t.Fatalf("after a panic: %v, %v", res, err)
				}
			}
			chat := route.RouteChat(ctx)
			_ = chat.Send(&routeguidev1.RouteChatRequest{Message: "hi"})
			_, err := chat.Receive()
			if connect.CodeOf(err) != connect.CodeInternal || strings.Contains(err.Error(), "stream panic") {
				t.Errorf("panicking RouteChat: %v, want INTERNAL without the panic value", err)
			}
			_ = chat.CloseResponse()
		})
	}
	t.Cleanup(func() {
		logs := g.log.String()
		if !strings.Contains(logs, "handler panicked") || !strings.Contains(logs, "secret panic value") || !strings.Contains(logs, "guard_test.go") {
			t.Errorf("the panic, its value and its stack should be logged; log:\n%s", logs)
		}
	})
}

func TestRawErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	g := startGuardServer(t, Config{})
	for name, opts := range protocols {
		t.Run(name, func(t *testing.T) {
			greeter := greeterv1connect.NewGreeterServiceClient(g.client, g.url, opts...)
			_, err := greeter.SayHello(t.Context(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "raw error"}))
			if connect.CodeOf(err) != connect.CodeUnknown {
				t.Fatalf("raw error: %v, want UNKNOWN", err)
			}
			for _, secret := range []string{"sql", "/var/lib", "teams.db"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("client sees %q in %v", secret, err)
				}
			}
		})
	}
	t.Cleanup(func() {
		if !strings.Contains(g.log.String(), "/var/lib/switchyard/teams.db") {
			t.Errorf("the raw error should be logged; log:\n%s", g.log.String())
		}
	})
}

func TestServerDeadlineForUnaryCalls(t *testing.T) {
	t.Parallel()
	g := startGuardServer(t, Config{UnaryTimeout: 300 * time.Millisecond})
	for name, opts := range protocols {
		t.Run(name, func(t *testing.T) {
			greeter := greeterv1connect.NewGreeterServiceClient(g.client, g.url, opts...)
			start := time.Now()
			// No client deadline: the server's applies.
			_, err := greeter.SayHello(t.Context(), connect.NewRequest(&greeterv1.SayHelloRequest{Name: "wait"}))
			if connect.CodeOf(err) != connect.CodeDeadlineExceeded {
				t.Errorf("SayHello(wait) = %v, want DEADLINE_EXCEEDED", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the server deadline took %v", d)
			}
		})
	}
	for range protocols {
		select {
		case d := <-g.greet.ended:
			if d < 250*time.Millisecond || d > 5*time.Second {
				t.Errorf("handler ran %v under a 300ms server deadline", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a handler never saw its deadline")
		}
	}
}

// A client deadline shorter than the server's (grpc-timeout for gRPC and
// gRPC-Web, connect-timeout-ms for Connect) reaches the handler.
func TestClientDeadlineIsHonoured(t *testing.T) {
	t.Parallel()
	g := startGuardServer(t, Config{UnaryTimeout: time.Minute})
	for name, opts := range protocols {
		t.Run(name, func(t *testing.T) {
			greeter := greeterv1connect.NewGreeterServiceClient(g.client, g.url, opts...)
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			_, err := greeter.SayHello(ctx, connect.NewRequest(&greeterv1.SayHelloRequest{Name: "wait"}))
			if connect.CodeOf(err) != connect.CodeDeadlineExceeded {
				t.Errorf("SayHello(wait) = %v, want DEADLINE_EXCEEDED", err)
			}
		})
	}
	for range protocols {
		select {
		case d := <-g.greet.ended:
			if d > 5*time.Second {
				t.Errorf("handler ran %v under a 200ms client deadline", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the client's deadline never reached the handler (server deadline is a minute)")
		}
	}
}

// A stream whose client goes away stops its server-side work promptly.
func TestCancelledStreamStopsServerWork(t *testing.T) {
	t.Parallel()
	g := startGuardServer(t, Config{})
	for name, opts := range protocols {
		t.Run(name, func(t *testing.T) {
			route := routeguidev1connect.NewRouteGuideServiceClient(g.client, g.url, opts...)
			ctx, cancel := context.WithCancel(t.Context())
			stream, err := route.ListFeatures(ctx, connect.NewRequest(&routeguidev1.ListFeaturesRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			for range 100 {
				if !stream.Receive() {
					t.Fatal(stream.Err())
				}
			}
			cancel()
			_ = stream.Close()
		})
	}
	for range protocols {
		select {
		case d := <-g.route.ended:
			if d > 2*time.Second {
				t.Errorf("the handler kept streaming %v after the client cancelled", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a cancelled stream's handler never stopped")
		}
	}
}

func TestContextErrorNames(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := contextError(ctx); connect.CodeOf(err) != connect.CodeCanceled {
		t.Errorf("cancelled: %v", err)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if err := contextError(ctx); connect.CodeOf(err) != connect.CodeDeadlineExceeded || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v", err)
	}
}

// A call cancelled once its deadline has passed met its deadline: over
// HTTP/1.1 net/http cancels a request's context when the read deadline
// of its body (limitBody, the call's deadline) passes, which may come a
// moment before the context's own deadline reports itself. Cancelled
// before its deadline, it stays CANCELED.
func TestCancelledPastTheDeadlineIsDeadlineExceeded(t *testing.T) {
	t.Parallel()
	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel := context.WithDeadline(parent, time.Now().Add(20*time.Millisecond))
	defer cancel()
	time.Sleep(20 * time.Millisecond)
	cancelParent() // as net/http does, before ctx's timer reports
	canceled := connect.NewError(connect.CodeCanceled, errors.New("the call was canceled while the route was being read"))
	d := NewDeadlineInterceptor(time.Minute)
	if err := d.explain(ctx, canceled); connect.CodeOf(err) != connect.CodeDeadlineExceeded {
		t.Errorf("cancelled past its deadline: %v, want DEADLINE_EXCEEDED", err)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(time.Hour))
	defer cancel()
	if err := d.explain(ctx, canceled); connect.CodeOf(err) != connect.CodeCanceled {
		t.Errorf("cancelled before its deadline: %v, want CANCELED", err)
	}
}
