package nginxtest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/emptypb"

	greeterv1 "github.com/switchyard/switchyard/gen/greeter/v1"
	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/nginxtest"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// The committed configuration passes `nginx -t` once its addresses and
// paths are the test's (nothing outside a temporary directory, no fixed
// port), and rendering replaced every address and path.
func TestCommittedConfigPassesNginxT(t *testing.T) {
	bin := nginxtest.Require(t)
	p, args := nginxtest.Prepare(t, []string{"127.0.0.1:1", "127.0.0.1:2"})
	out, err := exec.Command(bin, append([]string{"-t"}, args...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "test is successful") {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	rendered, err := os.ReadFile(p.Dir + "/switchyard.conf")
	if err != nil {
		t.Fatal(err)
	}
	var directives []string // without comments
	for _, line := range strings.Split(string(rendered), "\n") {
		if before, _, _ := strings.Cut(line, "#"); strings.TrimSpace(before) != "" {
			directives = append(directives, before)
		}
	}
	for _, left := range []string{"replica-", "/etc/nginx", "/var/log", "listen 8443", "listen 8080", "listen 8081"} {
		if strings.Contains(strings.Join(directives, "\n"), left) {
			t.Errorf("the rendered configuration still has %q", left)
		}
	}
	for _, up := range []string{"server 127.0.0.1:1 max_fails=1 fail_timeout=5s;", "server 127.0.0.1:2 max_fails=1 fail_timeout=5s;"} {
		if n := strings.Count(string(rendered), up); n != 2 {
			t.Errorf("%q appears %d times, want once in each of the 2 pools", up, n)
		}
	}
}

// A broken configuration fails nginx -t: the check can fail.
func TestNginxTRejectsBrokenConfig(t *testing.T) {
	bin := nginxtest.Require(t)
	p, args := nginxtest.Prepare(t, []string{"127.0.0.1:1"})
	if err := os.WriteFile(p.Dir+"/switchyard.conf", []byte("server { grpc_pass; }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, append([]string{"-t"}, args...)...).CombinedOutput(); err == nil {
		t.Fatalf("nginx -t accepted a broken configuration:\n%s", out)
	}
}

// Media types are case-insensitive (RFC 9110 §8.3.1), and the replicas
// serve gRPC whatever the case of its Content-Type: nginx must choose the
// HTTP/2 path for it too. Over HTTP/1.1 to the replica, nginx would drop
// the response's trailers, and with them the call's grpc-status.
func TestGRPCContentTypeOfAnyCaseGoesOverHTTP2(t *testing.T) {
	nginxtest.Require(t)
	srv := testserver.Start(t, server.Config{})
	px := nginxtest.Start(t, []string{srv.Addr})
	// SayHello{name: "x"} in one uncompressed gRPC message.
	msg := []byte{0, 0, 0, 0, 3, 0x0a, 1, 'x'}
	for _, ct := range []string{"application/grpc", "Application/gRPC", "APPLICATION/GRPC+PROTO"} {
		a := testserver.Ask(http.DefaultClient, http.MethodPost, "http://"+px.HTTP1+"/greeter.v1.GreeterService/SayHello",
			http.Header{"Content-Type": {ct}, "Te": {"trailers"}}, msg)
		if a.Err != "" || a.Status != http.StatusOK || a.Trailer.Get("Grpc-Status") != "0" {
			t.Errorf("Content-Type %q through nginx: want HTTP 200 with trailer grpc-status 0, got %v", ct, a)
		}
	}
}

// cutAfterRequest is a replica that dies once each call's request has
// reached it: it reads HTTP/2 frames until the first DATA frame, then
// closes the connection unanswered (nginx answers the call itself, 502).
// It counts the calls that reached it.
type cutAfterRequest struct {
	ln    net.Listener
	calls atomic.Int64
}

func startCutAfterRequest(t *testing.T) *cutAfterRequest {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &cutAfterRequest{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer func() { _ = c.Close() }()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				preface := make([]byte, len(http2.ClientPreface))
				if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
					return // HTTP/1.1 (gRPC-Web): cut at once
				}
				fr := http2.NewFramer(c, c)
				for {
					f, err := fr.ReadFrame()
					if err != nil {
						return
					}
					switch f.(type) {
					case *http2.HeadersFrame:
						u.calls.Add(1)
					case *http2.DataFrame:
						return
					}
				}
			})
		}
	})
	return u
}

// nginx answers a call itself (502) when the replica fails after the
// call's request reached it. A write may have been made then: as in the
// replicas' own answers (errkind.NotRetried), the answer must carry
// grpc-retry-pushback-ms -1 in a Trailers-Only response, so that a
// grpc-go retryPolicy listing UNAVAILABLE does not make it again. A read
// is retried, and so is a write nginx could send to no replica.
func TestNginxErrorsOnWritesAreNotRetried(t *testing.T) {
	nginxtest.Require(t)
	const sc = `{"methodConfig":[{"name":[{}],"retryPolicy":{"maxAttempts":3,"initialBackoff":"0.01s","maxBackoff":"0.01s","backoffMultiplier":1,"retryableStatusCodes":["UNAVAILABLE"]}}]}`
	dial := func(addr string) *grpc.ClientConn {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultServiceConfig(sc))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	// call makes one call (a stream for RouteChat) and returns its error
	// and trailers.
	call := func(conn *grpc.ClientConn, method string, stream bool) (metadata.MD, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var tr metadata.MD
		if !stream {
			err := conn.Invoke(ctx, method, &teamsv1.PutTeamRequest{City: "Miami", Nickname: "Sharks"}, &teamsv1.PutTeamResponse{}, grpc.Trailer(&tr))
			return tr, err
		}
		s, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, method)
		if err != nil {
			return nil, err
		}
		if err := s.SendMsg(&routeguidev1.RouteChatRequest{Message: "hi"}); err != nil && err != io.EOF {
			return nil, err
		}
		err = s.RecvMsg(&routeguidev1.RouteChatResponse{})
		return s.Trailer(), err
	}
	up := startCutAfterRequest(t)
	px := nginxtest.Start(t, []string{up.ln.Addr().String()})
	conn := dial(px.H2C)
	for _, tt := range []struct {
		method   string
		stream   bool
		attempts int64
	}{
		{"/teams.v1.TeamsService/PutTeam", false, 1},
		{"/teams.v1.TeamsService/DeleteTeam", false, 1},
		{"/routeguide.v1.RouteGuideService/RouteChat", true, 1},
		{"/routeguide.RouteGuide/RouteChat", true, 1},
		{"/teams.v1.TeamsService/GetTeam", false, 3},
		{"/routeguide.v1.RouteGuideService/ListFeatures", true, 3},
	} {
		up.calls.Store(0)
		tr, err := call(conn, tt.method, tt.stream)
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s, its replica failed after the request: want UNAVAILABLE, got %v", tt.method, err)
		}
		if n := up.calls.Load(); n != tt.attempts {
			t.Errorf("%s, its replica failed after the request: %d attempts reached it, want %d (error %v, trailers %v)", tt.method, n, tt.attempts, err, tr)
		}
		if want := tt.attempts == 1; want != slices.Equal(tr["grpc-retry-pushback-ms"], []string{"-1"}) {
			t.Errorf("%s: trailers %v, want grpc-retry-pushback-ms -1: %v", tt.method, tr, want)
		}
		if want := map[bool]string{true: "the write may have been made", false: "retry"}[tt.attempts == 1]; !strings.Contains(status.Convert(err).Message(), want) {
			t.Errorf("%s: message %q, want one saying %q", tt.method, status.Convert(err).Message(), want)
		}
	}
	// connect-go's gRPC client reads the same answer.
	cc := teamsv1connect.NewTeamsServiceClient(testserver.NewH2CClient(), "http://"+px.H2C, connect.WithGRPC())
	_, err := cc.PutTeam(testserver.CallContext(t), connect.NewRequest(&teamsv1.PutTeamRequest{City: "Miami", Nickname: "Sharks"}))
	if ce := new(connect.Error); !errors.As(err, &ce) || ce.Code() != connect.CodeUnavailable || ce.Meta().Get("Grpc-Retry-Pushback-Ms") != "-1" {
		t.Errorf("PutTeam with connect-go's gRPC client, its replica failed after the request: want unavailable with pushback -1, got %v", err)
	}
	// The access log keeps nginx's 502 and names the gRPC status, in a
	// line for each attempt (3 for each read, 1 for each write), written
	// once the answer is sent: wait for them.
	var lines []string
	for deadline := time.Now().Add(5 * time.Second); len(lines) < 11 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		lines = strings.Split(strings.TrimSpace(px.File("switchyard.access.log")), "\n")
	}
	if len(lines) != 11 {
		t.Errorf("access log has %d lines, want 11:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for _, line := range lines {
		if !strings.Contains(line, " 200 grpc_status=14 ") || !strings.Contains(line, " upstream_status=502 ") {
			t.Errorf("access log line %q, want status 200, grpc_status=14 and upstream_status=502", line)
		}
	}
	// The Connect streaming protocol (over HTTP/2 too) and gRPC-Web keep
	// nginx's 502, which their clients read as unavailable.
	for _, tt := range []struct {
		c        *http.Client
		addr, ct string
	}{
		{testserver.NewH2CClient(), px.H2C, "application/connect+proto"},
		{http.DefaultClient, px.HTTP1, "application/grpc-web+proto"},
	} {
		a := testserver.Ask(tt.c, http.MethodPost, "http://"+tt.addr+"/teams.v1.TeamsService/PutTeam",
			http.Header{"Content-Type": {tt.ct}}, []byte{0, 0, 0, 0, 0})
		if a.Status != http.StatusBadGateway || a.Header.Get("Grpc-Status") != "" {
			t.Errorf("%s through nginx, its replica failed: want nginx's 502 without grpc-status, got %v", tt.ct, a)
		}
	}

	// No replica listening: nothing was sent, so a write is retried.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	_ = ln.Close()
	px = nginxtest.Start(t, []string{down})
	var attempts atomic.Int64
	conn, err = grpc.NewClient(px.H2C, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultServiceConfig(sc),
		grpc.WithStatsHandler(countBegins{&attempts}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	tr, err := call(conn, "/teams.v1.TeamsService/PutTeam", false)
	if status.Code(err) != codes.Unavailable || attempts.Load() != 3 || len(tr["grpc-retry-pushback-ms"]) != 0 {
		t.Errorf("PutTeam, no replica listening: want UNAVAILABLE after 3 attempts without pushback, got %v after %d, trailers %v", err, attempts.Load(), tr)
	}
}

// countBegins counts a grpc-go client's attempts.
type countBegins struct{ n *atomic.Int64 }

func (c countBegins) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (c countBegins) HandleRPC(_ context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.Begin); ok {
		c.n.Add(1)
	}
}
func (c countBegins) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (c countBegins) HandleConn(context.Context, stats.ConnStats)                       {}

// The access log names each gRPC call's status, whether it came in the
// trailers (an answer with messages) or, Trailers-Only, in the headers
// (an error answered at once).
func TestAccessLogNamesGRPCStatus(t *testing.T) {
	nginxtest.Require(t)
	srv := testserver.Start(t, server.Config{})
	px := nginxtest.Start(t, []string{srv.Addr})
	conn, err := grpc.NewClient(px.H2C, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx := testserver.CallContext(t)
	for _, tt := range []struct {
		method string
		req    any
		code   codes.Code
	}{
		{"/greeter.v1.GreeterService/SayHello", &greeterv1.SayHelloRequest{Name: "x"}, codes.OK},
		{"/teams.v1.TeamsService/GetTeam", &teamsv1.GetTeamRequest{City: "Nowhere"}, codes.NotFound},
	} {
		if err := conn.Invoke(ctx, tt.method, tt.req, &emptypb.Empty{}); status.Code(err) != tt.code {
			t.Fatalf("%s through nginx: want %v, got %v", tt.method, tt.code, err)
		}
		// nginx writes the line once the answer is sent: wait for it.
		want := fmt.Sprintf("%q 200 grpc_status=%d ", "POST "+tt.method+" HTTP/2.0", tt.code)
		log := px.File("switchyard.access.log")
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(log, want) && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			log = px.File("switchyard.access.log")
		}
		if !strings.Contains(log, want) {
			t.Errorf("access log:\n%s\nwant a line with %s", log, want)
		}
	}
}

// The replicas take request headers up to -max-header-bytes (64 KiB);
// nginx must pass what they take, over HTTP/2 and HTTP/1.1 alike. With
// its defaults (8 KiB a line, 16 KiB a header block over HTTP/2) nginx
// answered a large token 400 over HTTP/1.1 and, over HTTP/2, closed the
// client's whole connection (GOAWAY ENHANCE_YOUR_CALM): every call on it
// failed UNAVAILABLE.
func TestLargeHeadersPassNginx(t *testing.T) {
	nginxtest.Require(t)
	srv := testserver.Start(t, server.Config{})
	px := nginxtest.Start(t, []string{srv.Addr})
	// 40 000 random letters: about 30 KB once HPACK's Huffman code has
	// compressed them, well within the replicas' 64 KiB.
	rnd := rand.New(rand.NewPCG(1, 2))
	token := make([]byte, 40000)
	for i := range token {
		token[i] = byte('a' + rnd.IntN(26))
	}
	conn, err := grpc.NewClient(px.H2C, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(testserver.CallContext(t), "x-token", string(token))
	if err := conn.Invoke(ctx, "/greeter.v1.GreeterService/SayHello", &greeterv1.SayHelloRequest{Name: "x"}, &greeterv1.SayHelloResponse{}); err != nil {
		t.Errorf("gRPC over HTTP/2 through nginx with a %d-byte header: %v", len(token), err)
	}
	a := testserver.Ask(http.DefaultClient, http.MethodPost, "http://"+px.HTTP1+"/greeter.v1.GreeterService/SayHello",
		http.Header{"Content-Type": {"application/json"}, "X-Token": {string(token)}}, []byte(`{"name":"x"}`))
	if a.Status != http.StatusOK {
		t.Errorf("Connect over HTTP/1.1 through nginx with a %d-byte header: want 200, got %v", len(token), a)
	}
}

// The committed configuration's $switchyard_write map names every
// procedure a second call would make again, and nothing else: a served v1
// procedure declared with side effects (anything but NO_SIDE_EFFECTS), and
// a legacy one of the same method name, except those that store nothing.
// A write added to the API without its line in the map would have nginx's
// own 502 retried.
func TestNginxWriteMapNamesEveryWrite(t *testing.T) {
	// storesNothing are declared without NO_SIDE_EFFECTS but change
	// nothing a retry would make twice: RecordRoute only sums its points.
	storesNothing := map[string]bool{"RecordRoute": true}
	procs := server.New(server.Config{}).Procedures
	writeNames := map[string]bool{}
	for _, p := range procs {
		service, method, _ := strings.Cut(strings.TrimPrefix(p.Path, "/"), "/")
		if !strings.Contains(service, ".v1.") || strings.HasPrefix(service, "grpc.") {
			continue // legacy (below), or gRPC's health and reflection: reads
		}
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service + "." + method))
		if err != nil {
			continue // served without a registered descriptor: health, reflection
		}
		opts, _ := d.(protoreflect.MethodDescriptor).Options().(*descriptorpb.MethodOptions)
		if opts.GetIdempotencyLevel() != descriptorpb.MethodOptions_NO_SIDE_EFFECTS && !storesNothing[method] {
			writeNames[method] = true
		}
	}
	var want []string
	for _, p := range procs {
		if writeNames[p.Path[strings.LastIndexByte(p.Path, '/')+1:]] {
			want = append(want, p.Path)
		}
	}
	conf, err := os.ReadFile(nginxtest.RepoFile(t, nginxtest.ConfigPath))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)map \$uri \$switchyard_write \{(.*?)\}`).FindSubmatch(conf)
	if block == nil {
		t.Fatalf("%s has no map $uri $switchyard_write", nginxtest.ConfigPath)
	}
	var got []string
	for _, m := range regexp.MustCompile(`(?m)^\s*(/\S+)\s+1;`).FindAllSubmatch(block[1], -1) {
		got = append(got, string(m[1]))
	}
	slices.Sort(want)
	slices.Sort(got)
	if len(want) < 4 || !slices.Equal(got, want) {
		t.Errorf("%s: $switchyard_write names %v, want the served writes %v", nginxtest.ConfigPath, got, want)
	}
}
