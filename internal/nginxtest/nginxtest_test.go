package nginxtest_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	greeterv1 "github.com/switchyard/switchyard/gen/greeter/v1"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
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
