package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/internal/testserver"
)

// adminAddr is the address the process logged for its admin listener.
func (p *process) adminAddr(t *testing.T) string {
	t.Helper()
	p.waitLog(t, "admin listener serving")
	for line := range strings.SplitSeq(p.logs(), "\n") {
		var rec struct {
			Msg       string `json:"msg"`
			AdminAddr string `json:"admin_addr"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "admin listener serving" {
			return rec.AdminAddr
		}
	}
	t.Fatal("no admin_addr in the log")
	return ""
}

func get(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// The admin listener (-admin-addr) serves /metrics, /debug/pprof/, /livez
// and /readyz; the public port serves none of them and keeps
// grpc.health.v1. During a drain /readyz fails and /livez does not.
func TestAdminListener(t *testing.T) {
	t.Parallel()
	p := startProcess(t, "-admin-addr", "127.0.0.1:0", "-drain-delay", "1500ms", "-shutdown-grace", "5s")
	admin := "http://" + p.adminAddr(t)
	http1 := &http.Client{Timeout: 10 * time.Second}
	defer http1.CloseIdleConnections()

	if _, err := p.client.GetTeam(t.Context(), connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"})); err != nil {
		t.Fatal(err)
	}
	// On loopback it answers only requests for localhost or an IP: a
	// page whose domain was rebound to 127.0.0.1 names its own.
	for host, want := range map[string]int{"attacker.example": http.StatusMisdirectedRequest, "attacker.example:80": http.StatusMisdirectedRequest,
		"localhost": 200, "LOCALHOST:9090": 200, "127.0.0.1": 200, "[::1]:9090": 200, "[::1]": 200} {
		req, err := http.NewRequest(http.MethodGet, admin+"/debug/pprof/cmdline", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		res, err := http1.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("admin /debug/pprof/cmdline for Host %s: %d, want %d", host, res.StatusCode, want)
		}
	}
	var metrics string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var code int
		if code, metrics = get(t, http1, admin+"/metrics"); code != 200 {
			t.Fatalf("admin /metrics: %d", code)
		}
		if strings.Contains(metrics, `switchyard_rpc_server_calls_total{code="ok",end="sent",procedure="/teams.v1.TeamsService/GetTeam",protocol="grpc"} 1`) {
			break
		}
	}
	for _, want := range []string{
		`switchyard_rpc_server_calls_total{code="ok",end="sent",procedure="/teams.v1.TeamsService/GetTeam",protocol="grpc"} 1`,
		`switchyard_rpc_server_duration_seconds_bucket{procedure="/teams.v1.TeamsService/GetTeam",protocol="grpc",le="0.0001"}`,
		"switchyard_http_connections_open ",
		`switchyard_db_pool_connections_open{pool="read"}`,
		"switchyard_teams_store_commits_total ",
		"switchyard_teams_cache_entries_limit 4096",
		"go_goroutines ",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("admin /metrics lacks %s", want)
		}
	}
	for path, want := range map[string]string{"/debug/pprof/": "goroutine", "/debug/pprof/cmdline": "-admin-addr", "/livez": "ok", "/readyz": "ok"} {
		if code, body := get(t, http1, admin+path); code != 200 || !strings.Contains(body, want) {
			t.Errorf("admin %s: %d %.100q, want 200 with %q", path, code, body, want)
		}
	}

	// The public port: no metrics, no profiles; health as before.
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/cmdline", "/livez", "/readyz"} {
		if code, body := get(t, http1, p.url+path); code != http.StatusNotFound {
			t.Errorf("public %s: %d %.100q, want 404", path, code, body)
		}
	}
	h2c := testserver.NewH2CClient()
	defer h2c.CloseIdleConnections()
	health := connect.NewClient[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse](
		h2c, p.url+"/grpc.health.v1.Health/Check", connect.WithGRPC())
	res, err := health.CallUnary(t.Context(), connect.NewRequest(&healthpb.HealthCheckRequest{}))
	if err != nil || res.Msg.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("public health: %v %v", res, err)
	}

	// Draining: readiness fails at once, liveness holds.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog(t, "draining")
	if code, _ := get(t, http1, admin+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("admin /readyz while draining: %d, want 503", code)
	}
	if code, _ := get(t, http1, admin+"/livez"); code != 200 {
		t.Errorf("admin /livez while draining: %d, want 200", code)
	}
	http1.CloseIdleConnections()
	h2c.CloseIdleConnections()
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// The observability flags: off by default, and a negative send-window
// timeout is refused by name.
func TestObservabilityFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil || o.adminAddr != "" || o.sendWindowTimeout != time.Minute {
		t.Fatalf("defaults: %q %v %v", o.adminAddr, o.sendWindowTimeout, err)
	}
	if o, err := parseFlags([]string{"-http2-send-window-timeout", "0"}, io.Discard); err != nil || o.sendWindowTimeout != 0 {
		t.Errorf("0 (never): %v %v", o.sendWindowTimeout, err)
	}
	for _, bad := range []string{"-1s", "10ms", "25h"} {
		if _, err := parseFlags([]string{"-http2-send-window-timeout", bad}, io.Discard); err == nil || !strings.Contains(err.Error(), "http2-send-window-timeout") {
			t.Errorf("%s: %v, want an error naming the flag", bad, err)
		}
	}
	for _, bad := range []string{"9090", "localhost:http-alt"} {
		if _, err := parseFlags([]string{"-admin-addr", bad}, io.Discard); err == nil || !strings.Contains(err.Error(), "admin-addr") {
			t.Errorf("-admin-addr %s: %v, want an error naming the flag", bad, err)
		}
	}
	// The admin listener's port must not be the main one's.
	for args, clash := range map[[4]string]bool{
		{"-addr", ":50051", "-admin-addr", "127.0.0.1:50051"}:         true,
		{"-addr", "127.0.0.1:9090", "-admin-addr", "127.0.0.1:9090"}:  true,
		{"-addr", "127.0.0.1:9090", "-admin-addr", "0.0.0.0:9090"}:    true,
		{"-addr", "127.0.0.1:9090", "-admin-addr", "127.0.0.2:9090"}:  false,
		{"-addr", "127.0.0.1:50051", "-admin-addr", "127.0.0.1:9090"}: false,
		{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0"}:        false,
		{"-addr", "127.0.0.1:9090", "-admin-addr", "127.0.0.1:09090"}: true,
		{"-addr", "[::1]:9090", "-admin-addr", "0.0.0.0:9090"}:        false,
		{"-addr", "[::1]:9090", "-admin-addr", "[::]:9090"}:           true,
	} {
		_, err := parseFlags(args[:], io.Discard)
		if got := err != nil && strings.Contains(err.Error(), "the admin listener needs a port of its own"); got != clash || (!clash && err != nil) {
			t.Errorf("%v: %v, want a clash %v", args, err, clash)
		}
	}
}

// A port taken by another process is named with its flag.
func TestBusyPortNamed(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, flagName := range []string{"-addr", "-admin-addr"} {
		args := []string{"-addr", "127.0.0.1:0", "-data-dir", t.TempDir(), flagName, busy.Addr().String()}
		cmd := exec.Command(switchyardBinary(t), args...)
		cmd.Env = hermeticEnv(t)
		out, err := cmd.CombinedOutput()
		if want := flagName + " " + busy.Addr().String() + ": listen tcp"; err == nil || !strings.Contains(string(out), want) {
			t.Errorf("%s on a busy port: %v, want an error containing %q:\n%s", flagName, err, want, out)
		}
	}
}

// The runtime samples allocations for the heap profile only when the admin
// listener can serve it: without -admin-addr the sampling is off (its
// buckets would stay for the process's life, unread), with it the heap
// profile keeps the runtime's default rate.
func TestHeapProfileSampling(t *testing.T) {
	t.Parallel()
	sampleBytes := func(t *testing.T, p *process) int {
		t.Helper()
		p.waitLog(t, "switchyard serving")
		for line := range strings.SplitSeq(p.logs(), "\n") {
			var rec struct {
				Msg         string `json:"msg"`
				SampleBytes *int   `json:"sample_bytes"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "heap profile" && rec.SampleBytes != nil {
				return *rec.SampleBytes
			}
		}
		t.Fatalf("no heap profile line in the log:\n%s", p.logs())
		return 0
	}
	t.Run("no admin listener", func(t *testing.T) {
		t.Parallel()
		p := startProcess(t, "-log-level", "debug")
		if got := sampleBytes(t, p); got != 0 {
			t.Errorf("heap profile sampled every %d bytes, want off (0)", got)
		}
	})
	t.Run("admin listener", func(t *testing.T) {
		t.Parallel()
		p := startProcess(t, "-log-level", "debug", "-admin-addr", "127.0.0.1:0")
		if got := sampleBytes(t, p); got != 512*1024 {
			t.Errorf("heap profile sampled every %d bytes, want the runtime's default 524288", got)
		}
		http1 := &http.Client{Timeout: 10 * time.Second}
		defer http1.CloseIdleConnections()
		// The text profile's header gives the rate it was taken at
		// (twice the sampling interval).
		code, body := get(t, http1, "http://"+p.adminAddr(t)+"/debug/pprof/heap?debug=1")
		if header, _, _ := strings.Cut(body, "\n"); code != 200 || !strings.HasSuffix(header, "@ heap/1048576") {
			t.Errorf("admin /debug/pprof/heap: %d %.200q, want 200 and a profile taken at heap/1048576", code, body)
		}
	})
}
