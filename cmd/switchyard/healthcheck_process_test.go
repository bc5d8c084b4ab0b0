package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// healthcheck runs `switchyard healthcheck args...` and returns its exit
// code and output.
func healthcheck(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(switchyardBinary(t), append([]string{"healthcheck"}, args...)...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

func expectHealth(t *testing.T, wantCode int, wantOut string, args ...string) {
	t.Helper()
	code, out := healthcheck(t, args...)
	if code != wantCode || !strings.Contains(out, wantOut) {
		t.Errorf("switchyard healthcheck %q: exit %d, %q; want exit %d and %q", args, code, out, wantCode, wantOut)
	}
}

// A live server: SERVING for the server, liveness, readiness and a
// service; an unknown service and a dead address fail with a reason; and
// during a drain liveness stays SERVING while readiness does not.
func TestHealthcheckCommand(t *testing.T) {
	t.Parallel()
	p := startProcess(t, "-drain-delay", "20s", "-shutdown-grace", "1s")
	for _, svc := range []string{"", server.HealthLiveness, server.HealthReadiness, "teams.v1.TeamsService"} {
		expectHealth(t, 0, "", "-addr", p.addr, "-service", svc)
	}
	expectHealth(t, 1, "no such health service", "-addr", p.addr, "-service", "no.such.Service")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	start := time.Now()
	expectHealth(t, 1, "connection refused", "-addr", dead, "-timeout", "2s")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a dead server took %v to report", d)
	}
	// A server that accepts but never answers: the timeout.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = silent.Close() }()
	expectHealth(t, 1, "no answer within 300ms", "-addr", silent.Addr().String(), "-timeout", "300ms")
	expectHealth(t, 1, "want 1ms to 1m", "-timeout", "2m")

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "draining")
	expectHealth(t, 0, "", "-addr", p.addr, "-service", server.HealthLiveness)
	expectHealth(t, 1, "NOT_SERVING", "-addr", p.addr, "-service", server.HealthReadiness)
	expectHealth(t, 1, "NOT_SERVING", "-addr", p.addr)
}

func TestHealthcheckCommandTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certPEM, keyPEM := testserver.SelfSignedCert(t)
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, "-tls-cert", cert, "-tls-key", key)
	expectHealth(t, 0, "", "-addr", p.addr, "-tls", "-tls-ca", cert)
	expectHealth(t, 0, "", "-addr", p.addr, "-tls", "-tls-insecure-skip-verify")
	expectHealth(t, 1, "certificate", "-addr", p.addr, "-tls")
	expectHealth(t, 1, "the server speaks TLS: add -tls", "-addr", p.addr) // cleartext to a TLS port
	expectHealth(t, 1, "-tls-ca and -tls-insecure-skip-verify go with -tls", "-addr", p.addr, "-tls-ca", cert)
	expectHealth(t, 1, "-tls-ca and -tls-insecure-skip-verify go with -tls", "-addr", p.addr, "-tls-insecure-skip-verify")
}

// A bad healthcheck command line is said once, not followed by the whole
// usage (-h prints that, and exits 0), and exits 1 as any failed check
// does.
func TestHealthcheckBadCommandLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ args, want string }{
		{"-timeout abc", `healthcheck: -timeout "abc" does not parse: want a duration from 1ms to 1m, such as 3s`},
		// A number without its unit is no duration either.
		{"-timeout 3", `healthcheck: -timeout "3" does not parse: want a duration from 1ms to 1m, such as 3s`},
		{"-no-such-flag", "flag provided but not defined: -no-such-flag"},
		// Which would it be: verify with the CA, or verify nothing?
		{"-tls -tls-ca ca.pem -tls-insecure-skip-verify", "-tls-ca verifies the server with ca.pem, -tls-insecure-skip-verify not at all: give one"},
	} {
		code, out := healthcheck(t, strings.Fields(tc.args)...)
		if code != 1 || strings.Count(out, tc.want) != 1 || strings.Contains(out, "usage:") {
			t.Errorf("switchyard healthcheck %s: exit %d, %q; want exit 1 and %q once, without the usage", tc.args, code, out, tc.want)
		}
	}
	if code, out := healthcheck(t, "-h"); code != 0 || strings.Count(out, "usage: switchyard healthcheck") != 1 || !strings.Contains(out, "-tls-insecure-skip-verify") {
		t.Errorf("switchyard healthcheck -h: exit %d, %q; want exit 0 and the usage once", code, out)
	}
}
