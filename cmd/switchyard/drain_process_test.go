package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

type chat = connect.BidiStreamForClient[routeguidev1.RouteChatRequest, routeguidev1.RouteChatResponse]

// say sends a note at loc and reads the replies it expects.
func say(t *testing.T, s *chat, loc *routeguidev1.Point, msg string, replies int) {
	t.Helper()
	if err := s.Send(&routeguidev1.RouteChatRequest{Location: loc, Message: msg}); err != nil {
		t.Fatalf("send %q: %v", msg, err)
	}
	for i := range replies {
		if _, err := s.Receive(); err != nil {
			t.Fatalf("reply %d to %q: %v", i, msg, err)
		}
	}
}

var protocols = map[string][]connect.ClientOption{
	"connect": nil,
	"grpc":    {connect.WithGRPC()},
	"grpcweb": {connect.WithGRPCWeb()},
}

// SIGTERM: new connections are refused, streams in flight in every protocol
// finish within the grace period, and the process exits 0.
func TestSIGTERMDrainsInFlightStreams(t *testing.T) {
	t.Parallel()
	p := startProcess(t, "-shutdown-grace", "20s")
	client := testserver.NewH2CClient()
	defer client.CloseIdleConnections()

	type inflight struct {
		chat   *chat
		record *connect.ClientStreamForClient[routeguidev1.RecordRouteRequest, routeguidev1.RecordRouteResponse]
		loc    *routeguidev1.Point
	}
	calls := map[string]inflight{}
	i := int32(0)
	for name, opts := range protocols {
		i++
		rg := routeguidev1connect.NewRouteGuideServiceClient(client, p.url, opts...)
		c := inflight{chat: rg.RouteChat(t.Context()), record: rg.RecordRoute(t.Context()), loc: &routeguidev1.Point{Latitude: i}}
		say(t, c.chat, c.loc, name+" before", 1)
		if err := c.record.Send(&routeguidev1.RecordRouteRequest{Latitude: 1}); err != nil {
			t.Fatal(err)
		}
		calls[name] = c
	}

	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "draining")
	// Draining: the listener is closed.
	if conn, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
		conn.Close()
		t.Error("a new connection was accepted after SIGTERM")
	}
	time.Sleep(500 * time.Millisecond) // the streams stay open a while into the drain
	for name, c := range calls {
		say(t, c.chat, c.loc, name+" during drain", 2)
		if err := c.chat.CloseRequest(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.chat.Receive(); !errors.Is(err, io.EOF) {
			t.Errorf("%s: RouteChat ended with %v, want io.EOF", name, err)
		}
		_ = c.chat.CloseResponse()
		if err := c.record.Send(&routeguidev1.RecordRouteRequest{Latitude: 2}); err != nil {
			t.Fatal(err)
		}
		res, err := c.record.CloseAndReceive()
		if err != nil || res.Msg.GetPointCount() != 2 {
			t.Errorf("%s: RecordRoute during drain = %v, %v; want 2 points", name, res, err)
		}
	}
	client.CloseIdleConnections()
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("drain took %v although every call had finished", d)
	}
	if !strings.Contains(p.logs(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", p.logs())
	}
}

// A stream that outlives the grace period is ended with UNAVAILABLE, which
// its client may retry, in every protocol (not cut off mid-message, which
// connect-go reports as internal or unknown), and the process still exits
// 0 on time.
func TestGracePeriodEnds(t *testing.T) {
	t.Parallel()
	p := startProcess(t, "-shutdown-grace", "1s")
	client := testserver.NewH2CClient()
	defer client.CloseIdleConnections()
	chats := map[string]*chat{}
	for name, opts := range protocols {
		s := routeguidev1connect.NewRouteGuideServiceClient(client, p.url, opts...).RouteChat(t.Context())
		defer s.CloseResponse()
		say(t, s, &routeguidev1.Point{Latitude: int32(len(chats))}, "lingering", 1) // a location each: one reply
		chats[name] = s
	}
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if d := time.Since(start); d < time.Second || d > 6*time.Second {
		t.Errorf("exit %v after SIGTERM, want just after the 1 s grace", d)
	}
	for name, s := range chats {
		_, err := s.Receive()
		if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "the server ended the call") {
			t.Errorf("%s: the stream past the grace ended with %v, want unavailable saying the server ended it", name, err)
		}
	}
	logs := p.logs()
	if !strings.Contains(logs, "ending the calls still running") || strings.Contains(logs, "closing the connections whose calls have not ended") {
		t.Errorf("the log does not say the calls were ended, each in time:\n%s", logs)
	}
	// Each ended call has its line, written before the process stopped,
	// with the answer its client got.
	lines, answered := 0, 0
	for line := range strings.Lines(logs) {
		if strings.Contains(line, `"procedure":"/routeguide.v1.RouteGuideService/RouteChat"`) {
			lines++
			if strings.Contains(line, `"code":"unavailable"`) && strings.Contains(line, "the server ended the call") {
				answered++
			}
		}
	}
	if lines != len(chats) || answered != len(chats) {
		t.Errorf("%d RouteChat lines, %d of them saying the server ended the call, want %d of each:\n%s", lines, answered, len(chats), logs)
	}
}

// A second signal during the drain ends the process at once with code 1
// (2 is a bad command line), and its log line is written: during the
// drain delay and during the grace period.
func TestSecondSignalForcesExit(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-shutdown-grace", "1m"}, {"-drain-delay", "1m"}} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			p := startProcess(t, args...)
			client := testserver.NewH2CClient()
			defer client.CloseIdleConnections()
			s := routeguidev1connect.NewRouteGuideServiceClient(client, p.url).RouteChat(t.Context())
			defer s.CloseResponse()
			say(t, s, &routeguidev1.Point{}, "lingering", 1)
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			p.waitLog(t, "draining")
			start := time.Now()
			_ = p.cmd.Process.Signal(syscall.SIGINT)
			if code := p.wait(t, 10*time.Second); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("forced exit took %v", d)
			}
			if !strings.Contains(p.logs(), `"msg":"forced exit","signal":"interrupt"`) {
				t.Errorf("no forced exit line in the log:\n%s", p.logs())
			}
		})
	}
}

// The flags for TLS are checked, and a TLS process serves.
func TestTLSFlags(t *testing.T) {
	t.Parallel()
	if _, err := parseFlags([]string{"-tls-cert", "x.pem"}, io.Discard); err == nil {
		t.Error("-tls-cert without -tls-key was accepted")
	}
	if _, err := parseFlags([]string{"-http2-server", "nghttp2"}, io.Discard); err == nil {
		t.Error("-http2-server nghttp2 was accepted")
	}
	for _, impl := range []string{"switchyard", "net/http"} {
		if o, err := parseFlags([]string{"-http2-server", impl}, io.Discard); err != nil || o.http2Server != impl {
			t.Errorf("-http2-server %s: %v, %q", impl, err, o.http2Server)
		}
	}
	dir := t.TempDir()
	certPEM, keyPEM := testserver.SelfSignedCert(t)
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	// A bad key fails at start, not at the first handshake.
	bad := exec.Command(switchyardBinary(t), "-addr", "127.0.0.1:0", "-data-dir", t.TempDir(), "-tls-cert", cert, "-tls-key", cert)
	bad.Env = hermeticEnv(t)
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "TLS") {
		t.Errorf("a bad key: %v\n%s", err, out)
	}
	p := startProcess(t, "-tls-cert", cert, "-tls-key", key)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	client := testserver.NewTLSClient(roots)
	defer client.CloseIdleConnections()
	for name, opts := range protocols {
		res, err := routeguidev1connect.NewRouteGuideServiceClient(client, "https://"+p.addr, opts...).
			GetFeature(t.Context(), connect.NewRequest(&routeguidev1.GetFeatureRequest{Latitude: 409146138, Longitude: -746188906}))
		if err != nil || res.Msg.GetName() == "" {
			t.Errorf("%s over TLS: %v, %v", name, res, err)
		}
	}
}

// A client process killed in the middle of its streams (no clean close)
// leaves no goroutine behind on the server.
func TestKilledClientLeavesNoGoroutines(t *testing.T) {
	// Not parallel: it counts the goroutines of this test process, which
	// hosts the server.
	srv := testserver.Start(t, server.Config{})
	warm := routeguidev1connect.NewRouteGuideServiceClient(srv.HTTPClient, srv.URL)
	if _, err := warm.GetFeature(t.Context(), connect.NewRequest(&routeguidev1.GetFeatureRequest{})); err != nil {
		t.Fatal(err)
	}
	srv.HTTPClient.CloseIdleConnections()
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()

	for round := range 3 {
		victim := exec.Command(os.Args[0], "-test.run=^$")
		victim.Env = append(os.Environ(), "SWITCHYARD_TEST_VICTIM="+srv.URL)
		out, err := victim.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		victim.Stderr = os.Stderr
		if err := victim.Start(); err != nil {
			t.Fatal(err)
		}
		ready, _ := bufio.NewReader(out).ReadString('\n')
		if strings.TrimSpace(ready) != "ready" {
			_ = victim.Process.Kill()
			t.Fatalf("victim said %q", ready)
		}
		if n := runtime.NumGoroutine(); n < base+6 {
			t.Errorf("round %d: only %d goroutines over a base of %d with the victim's streams open", round, n, base)
		}
		_ = victim.Process.Signal(syscall.SIGKILL)
		_ = victim.Wait()
		testserver.WaitGoroutines(t, base, 10*time.Second, fmt.Sprintf("round %d: the client was killed", round))
	}
}

// victimClient opens streams of every kind in every protocol against url,
// says "ready" and waits to be killed.
func victimClient(url string) {
	client := testserver.NewH2CClient()
	ctx := context.Background()
	for _, opts := range protocols {
		rg := routeguidev1connect.NewRouteGuideServiceClient(client, url, opts...)
		c := rg.RouteChat(ctx)
		if err := c.Send(&routeguidev1.RouteChatRequest{Message: "victim"}); err != nil {
			panic(err)
		}
		if _, err := c.Receive(); err != nil {
			panic(err)
		}
		r := rg.RecordRoute(ctx)
		if err := r.Send(&routeguidev1.RecordRouteRequest{}); err != nil {
			panic(err)
		}
		// A server stream the victim never reads past its first message.
		l, err := rg.ListFeatures(ctx, connect.NewRequest(&routeguidev1.ListFeaturesRequest{
			Hi: &routeguidev1.Point{Latitude: 900000000, Longitude: 1800000000}, Lo: &routeguidev1.Point{Latitude: -900000000, Longitude: -1800000000}}))
		if err != nil || !l.Receive() {
			panic(fmt.Sprint("ListFeatures: ", err))
		}
	}
	time.Sleep(200 * time.Millisecond) // let RecordRoute's first message reach the server
	fmt.Println("ready")
	select {}
}

// With -drain-delay, health reports NOT_SERVING (to new and existing
// connections) while the process still serves; then new connections are
// refused and the process exits 0.
func TestDrainDelayReportsNotServing(t *testing.T) {
	t.Parallel()
	p := startProcess(t, "-drain-delay", "1500ms", "-shutdown-grace", "5s")
	client := testserver.NewH2CClient()
	defer client.CloseIdleConnections()
	health := connect.NewClient[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse](
		client, p.url+"/grpc.health.v1.Health/Check", connect.WithGRPC())
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		res, err := health.CallUnary(t.Context(), connect.NewRequest(&healthpb.HealthCheckRequest{Service: service}))
		if err != nil {
			t.Fatalf("health(%q): %v", service, err)
		}
		return res.Msg.GetStatus()
	}
	if got := check(""); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before SIGTERM = %v", got)
	}
	// A client watching the server's health, as grpc-go's client-side
	// health checking does: told NOT_SERVING at once, and its watch ends
	// when the shutdown begins, without holding it for the grace period.
	watch, err := connect.NewClient[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse](
		client, p.url+"/grpc.health.v1.Health/Watch", connect.WithGRPC()).
		CallServerStream(t.Context(), connect.NewRequest(&healthpb.HealthCheckRequest{}))
	if err != nil || !watch.Receive() || watch.Msg().GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch before SIGTERM: %v, %v", err, watch.Err())
	}
	defer watch.Close()
	watched := make(chan error, 1)
	go func() {
		if !watch.Receive() || watch.Msg().GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			watched <- fmt.Errorf("no NOT_SERVING: %w", watch.Err())
			return
		}
		if watch.Receive() || connect.CodeOf(watch.Err()) != connect.CodeUnavailable {
			watched <- fmt.Errorf("after NOT_SERVING: %v, %w", watch.Msg(), watch.Err())
			return
		}
		watched <- nil
	}()
	// An HTTP/1.1 keep-alive connection, as a proxy's upstream pool holds.
	h1 := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer h1.CloseIdleConnections()
	if res := postH1(t, h1, p.url); res.Close {
		t.Error("an HTTP/1.1 response before SIGTERM carried Connection: close")
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog(t, "draining")
	for _, service := range []string{"", "routeguide.v1.RouteGuideService"} {
		if got := check(service); got != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health(%q) while draining = %v, want NOT_SERVING", service, got)
		}
	}
	// The drain began before health said NOT_SERVING: from then on every
	// HTTP/1.1 response carries Connection: close, so the proxy lets go of
	// the connection before the shutdown closes it under a request.
	if res := postH1(t, h1, p.url); !res.Close || !res.Reused {
		t.Errorf("HTTP/1.1 during the drain delay: Connection: close %v over the kept-alive connection %v, want both",
			res.Close, res.Reused)
	}
	// A new connection is still served during the delay.
	fresh := testserver.NewH2CClient()
	defer fresh.CloseIdleConnections()
	if _, err := routeguidev1connect.NewRouteGuideServiceClient(fresh, p.url).
		GetFeature(t.Context(), connect.NewRequest(&routeguidev1.GetFeatureRequest{})); err != nil {
		t.Errorf("a call during the drain delay: %v", err)
	}
	refused := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !refused; time.Sleep(50 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			refused = true
		} else {
			conn.Close()
		}
	}
	if !refused {
		t.Error("new connections were still accepted 5 s after the 1.5 s drain delay")
	}
	client.CloseIdleConnections()
	fresh.CloseIdleConnections()
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if err := <-watched; err != nil {
		t.Errorf("health watch: %v", err)
	}
	if strings.Contains(p.logs(), "grace period over") {
		t.Errorf("the shutdown waited out its grace period:\n%s", p.logs())
	}
}

// h1Answer is what postH1 saw of its response.
type h1Answer struct {
	Close  bool // the response carried Connection: close
	Reused bool // over a kept-alive connection
}

// postH1 makes a Connect unary call (GetFeature, JSON) over HTTP/1.1 with
// client, as nginx proxies one, and reads its answer whole.
func postH1(t *testing.T, client *http.Client, url string) h1Answer {
	t.Helper()
	var a h1Answer
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { a.Reused = info.Reused },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/routeguide.v1.RouteGuideService/GetFeature", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("HTTP/1.1 GetFeature: %v", err)
	}
	defer res.Body.Close()
	if _, err := io.ReadAll(res.Body); err != nil || res.StatusCode != http.StatusOK || res.ProtoMajor != 1 {
		t.Fatalf("HTTP/1.1 GetFeature: %s %d, %v", res.Proto, res.StatusCode, err)
	}
	a.Close = res.Close
	return a
}

// SIGHUP reads -tls-cert and -tls-key again: new handshakes get the new
// certificate, without a restart; a pair that fails to load keeps the
// previous one in use.
func TestTLSCertificateReloadsOnSIGHUP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	install := func(certPEM, keyPEM []byte) {
		t.Helper()
		if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	firstCert, firstKey := testserver.SelfSignedCert(t)
	install(firstCert, firstKey)
	p := startProcess(t, "-tls-cert", cert, "-tls-key", key)
	// served returns the serial number of the certificate a new handshake
	// gets.
	served := func() string {
		t.Helper()
		conn, err := tls.Dial("tcp", p.addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	serialOf := func(certPEM []byte) string {
		block, _ := pem.Decode(certPEM)
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c.SerialNumber.String()
	}
	hangup := func(wantLog string) {
		t.Helper()
		before := strings.Count(p.logs(), wantLog)
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); strings.Count(p.logs(), wantLog) == before; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no new %q in the log after SIGHUP:\n%s", wantLog, p.logs())
			}
		}
	}
	if got, want := served(), serialOf(firstCert); got != want {
		t.Fatalf("serving certificate %s, want %s", got, want)
	}
	secondCert, secondKey := testserver.SelfSignedCert(t)
	install(secondCert, secondKey)
	hangup(`"msg":"TLS certificate reloaded"`)
	if got, want := served(), serialOf(secondCert); got != want {
		t.Fatalf("after SIGHUP serving %s, want the new certificate %s", got, want)
	}
	install([]byte("not a certificate"), secondKey)
	hangup(`"msg":"TLS certificate reload failed; serving the previous certificate"`)
	if got, want := served(), serialOf(secondCert); got != want {
		t.Fatalf("after a failed reload serving %s, want the previous certificate %s", got, want)
	}
	// A pair clients would refuse does not replace a valid one.
	install(testserver.SelfSignedCertValid(t, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour)))
	hangup(`the certificate expired at `)
	if got, want := served(), serialOf(secondCert); got != want {
		t.Fatalf("after a reload of an expired certificate serving %s, want the previous certificate %s", got, want)
	}
	select {
	case <-p.exited:
		t.Fatalf("SIGHUP ended the process:\n%s", p.logs())
	default:
	}
}

// A certificate that is not valid now is served, since nothing better is
// at hand, but the log says clients will refuse it and why.
func TestExpiredCertificateWarned(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM, keyPEM := testserver.SelfSignedCertValid(t, time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, "-tls-cert", cert, "-tls-key", key)
	p.waitLog(t, "TLS: clients will refuse this certificate")
	if !strings.Contains(p.logs(), `"err":"the certificate is not valid before `) {
		t.Errorf("the warning does not say why:\n%s", p.logs())
	}
}

// SIGHUP while the team store is still being opened (PostgreSQL can take
// seconds) does not end the process: it would reload the certificate.
// Here the store's server answers nothing, then hangs up, after the
// signal: the process must fail on that, with status 1, not die of SIGHUP.
func TestHangupDuringStart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(switchyardBinary(t), "-addr", "127.0.0.1:0", "-postgres-dsn", "postgres://u@"+ln.Addr().String()+"/db?sslmode=disable")
	cmd.Env = hermeticEnv(t)
	var out strings.Builder
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	conn, err := ln.Accept() // the store is being opened
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	conn.Close()
	ln.Close()
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out.String(), "postgres") {
		t.Errorf("after SIGHUP during start: %v, want exit status 1 with PostgreSQL's error:\n%s", err, out.String())
	}
}
