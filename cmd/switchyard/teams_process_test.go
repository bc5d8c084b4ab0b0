package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/services/teams"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func (p *process) put(t *testing.T, city, nickname string) {
	t.Helper()
	req := connect.NewRequest(&teamsv1.PutTeamRequest{City: city, Nickname: nickname})
	req.Header().Set("Authorization", "Bearer "+adminToken)
	if _, err := p.client.PutTeam(ctx(t), req); err != nil {
		t.Fatalf("PutTeam(%s): %v", city, err)
	}
}

func (p *process) del(t *testing.T, city string) {
	t.Helper()
	req := connect.NewRequest(&teamsv1.DeleteTeamRequest{City: city})
	req.Header().Set("Authorization", "Bearer "+adminToken)
	if _, err := p.client.DeleteTeam(ctx(t), req); err != nil {
		t.Fatalf("DeleteTeam(%s): %v", city, err)
	}
}

// nickname returns the team of city, or "" when there is none.
func (p *process) nickname(t *testing.T, city string) string {
	t.Helper()
	res, err := p.client.GetTeam(ctx(t), connect.NewRequest(&teamsv1.GetTeamRequest{City: city}))
	if connect.CodeOf(err) == connect.CodeNotFound {
		return ""
	}
	if err != nil {
		t.Fatalf("GetTeam(%s): %v", city, err)
	}
	return res.Msg.GetNickname()
}

// A write that returned survives kill -9 of the server right after it.
func TestWriteSurvivesKill9(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startTeams(t, dir)
	p.del(t, "Boston")
	for i := range 5 {
		p.put(t, fmt.Sprintf("Kill City %d", i), "Survivors")
	}
	p.put(t, "Miami", "Sharks")
	p.kill9(t)

	p = startTeams(t, dir)
	for i := range 5 {
		if got := p.nickname(t, fmt.Sprintf("kill city %d", i)); got != "Survivors" {
			t.Errorf("after kill -9, Kill City %d is %q", i, got)
		}
	}
	if got := p.nickname(t, "Miami"); got != "Sharks" {
		t.Errorf("after kill -9, the last write before it is lost: Miami is %q", got)
	}
	if got := p.nickname(t, "Boston"); got != "" {
		t.Errorf("after kill -9, deleted Boston is back as %q", got)
	}
}

// Changes survive an orderly restart, and the seed does not come back.
func TestRestartKeepsChanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startTeams(t, dir)
	if got := p.nickname(t, "Chicago"); got != "Jackals" {
		t.Fatalf("a new data directory is not seeded: Chicago is %q", got)
	}
	p.put(t, "Chicago", "Bears")
	p.del(t, "Seattle")
	p.put(t, "Zürich", "Löwen")
	p.stop(t)
	if _, err := os.Stat(filepath.Join(dir, "teams.db")); err != nil {
		t.Errorf("no teams.db in -data-dir: %v", err)
	}

	p = startTeams(t, dir)
	for city, want := range map[string]string{"chicago": "Bears", "Seattle": "", "ZÜRICH": "Löwen", "Detroit": "Wheels"} {
		if got := p.nickname(t, city); got != want {
			t.Errorf("after restart %s is %q, want %q", city, got, want)
		}
	}
}

// Two processes on one data directory share the directory of teams.
func TestTwoProcessesOneDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := startTeams(t, dir), startTeams(t, dir)
	var wg sync.WaitGroup
	for i, p := range []*process{a, b} {
		wg.Go(func() {
			for j := range 20 {
				req := connect.NewRequest(&teamsv1.PutTeamRequest{City: fmt.Sprintf("Both %d-%d", i, j), Nickname: "N"})
				req.Header().Set("Authorization", "Bearer "+adminToken)
				if _, err := p.client.PutTeam(ctx(t), req); err != nil {
					t.Errorf("process %d PutTeam: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	for i, p := range []*process{a, b} {
		for j := range 20 {
			for k := range 2 {
				if got := p.nickname(t, fmt.Sprintf("Both %d-%d", k, j)); got != "N" {
					t.Errorf("process %d does not see Both %d-%d", i, k, j)
				}
			}
		}
	}
	a.del(t, "Detroit")
	if got := b.nickname(t, "Detroit"); got != "" {
		t.Errorf("process b still sees Detroit after process a deleted it: %q", got)
	}
}

// A data directory that cannot be created stops the server with a message
// naming it, instead of serving without storage.
func TestBadDataDir(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(switchyardBinary(t), "-addr", "127.0.0.1:0", "-data-dir", filepath.Join(file, "sub"))
	cmd.Env = hermeticEnv(t)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "data directory") {
		t.Errorf("switchyard with an unusable -data-dir: %v\n%s", err, out)
	}
}

// With SWITCHYARD_POSTGRES_DSN the teams live in PostgreSQL: two replicas
// share them, and they outlive both.
func TestPostgresReplicas(t *testing.T) {
	t.Parallel()
	dsn := "SWITCHYARD_POSTGRES_DSN=" + pgtest.Database(t)
	a, b := startTeams(t, t.TempDir(), dsn), startTeams(t, t.TempDir(), dsn)
	a.put(t, "Miami", "Sharks")
	b.del(t, "Boston")
	if got := b.nickname(t, "miami"); got != "Sharks" {
		t.Errorf("replica b sees Miami as %q", got)
	}
	if got := a.nickname(t, "Boston"); got != "" {
		t.Errorf("replica a still sees Boston: %q", got)
	}
	a.kill9(t)
	b.stop(t)
	c := startTeams(t, t.TempDir(), dsn)
	if got := c.nickname(t, "Miami"); got != "Sharks" {
		t.Errorf("after both replicas stopped, Miami is %q", got)
	}
	if got := c.nickname(t, "Boston"); got != "" {
		t.Errorf("after a restart, deleted seed team Boston is back: %q", got)
	}
	// startTeams passes -data-dir, which a DSN leaves unused: said once,
	// with where the DSN came from.
	if want := `"msg":"-data-dir is not used: the teams are in PostgreSQL","dsn_from":"SWITCHYARD_POSTGRES_DSN"`; strings.Count(c.logs(), want) != 1 {
		t.Errorf("the log does not say once that -data-dir is not used (%s):\n%s", want, c.logs())
	}
}

// SQLite's file deleted under the running server: it acknowledges no
// write from then on (each would be lost at the next start) and answers
// every team call UNAVAILABLE with the remedy; it drains, with liveness
// and readiness NOT_SERVING on the public port and the admin listener, and
// exits with status 1, so that its supervisor (systemd's
// Restart=on-failure, compose's restart policy, Kubernetes) starts it
// again. The new start opens the file now at the path. Before, it went on
// serving and acknowledging writes into the deleted file.
func TestDataFileDeletedUnderTheServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startProcessEnv(t, []string{"SWITCHYARD_ADMIN_TOKEN=" + adminToken}, "-data-dir", dir, "-admin-addr", "127.0.0.1:0", "-drain-delay", "3s")
	admin := "http://" + p.adminAddr(t)
	http1 := &http.Client{Timeout: 10 * time.Second}
	defer http1.CloseIdleConnections()
	p.put(t, "Gotham", "Bats")

	for _, name := range []string{"teams.db", "teams.db-wal", "teams.db-shm"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	req := connect.NewRequest(&teamsv1.PutTeamRequest{City: "Metropolis", Nickname: "Supers"})
	req.Header().Set("Authorization", "Bearer "+adminToken)
	if _, err := p.client.PutTeam(ctx(t), req); connect.CodeOf(err) != connect.CodeUnavailable ||
		!strings.Contains(err.Error(), "until it restarts") || !strings.Contains(err.Error(), "may have been made") {
		t.Errorf("PutTeam after the file was deleted: %v, want unavailable until it restarts, and may have been made", err)
	}
	// A read is refused within the feed's bound (a cache hit may be
	// served until the cache has taken the feed's fall).
	for deadline := time.Now().Add(teams.FeedBound); ; time.Sleep(10 * time.Millisecond) {
		_, err := p.client.GetTeam(ctx(t), connect.NewRequest(&teamsv1.GetTeamRequest{City: "Gotham"}))
		if connect.CodeOf(err) == connect.CodeUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GetTeam %v after the file was deleted: %v, want unavailable", teams.FeedBound, err)
		}
	}

	// The drain, within its delay: every health name NOT_SERVING.
	p.waitLog(t, "draining: the team store lost its SQLite file; the process exits with status 1 once drained, so that its supervisor starts it again")
	h2c := testserver.NewH2CClient()
	defer h2c.CloseIdleConnections()
	health := connect.NewClient[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse](
		h2c, p.url+"/grpc.health.v1.Health/Check", connect.WithGRPC())
	for _, name := range []string{"", "liveness", "readiness", "teams.v1.TeamsService", "Teams", "greeter.v1.GreeterService"} {
		res, err := health.CallUnary(ctx(t), connect.NewRequest(&healthpb.HealthCheckRequest{Service: name}))
		if err != nil || res.Msg.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health %q while draining: %v %v, want NOT_SERVING", name, res, err)
		}
	}
	for _, path := range []string{"/livez", "/readyz"} {
		if code, body := get(t, http1, admin+path); code != http.StatusServiceUnavailable || !strings.Contains(body, "restart") {
			t.Errorf("admin %s while draining: %d %q, want 503 naming the restart", path, code, body)
		}
	}
	http1.CloseIdleConnections()
	h2c.CloseIdleConnections()
	// A supervisor stopping it now: the first signal does not force the
	// exit, which would skip the store's close.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "already draining")
	if code := p.wait(t, 15*time.Second); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if strings.Contains(p.logs(), `"msg":"forced exit"`) {
		t.Error("the first signal in the drain forced the exit")
	}

	// The new start: a new file, and no trace of the refused write.
	next := startTeams(t, dir)
	if got := next.nickname(t, "Chicago"); got != "Jackals" {
		t.Errorf("started again: Chicago %q, want the seeded Jackals", got)
	}
	if got := next.nickname(t, "Metropolis"); got != "" {
		t.Errorf("started again: the refused write is there (%q)", got)
	}
}

// A port another process listens on stops the server with exit status 1
// and a message that names the flag and says what to do, for -addr and
// -admin-addr alike.
func TestPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	busy := ln.Addr().String()
	for _, args := range [][]string{{"-addr", busy}, {"-addr", "127.0.0.1:0", "-admin-addr", busy}} {
		dataDir := t.TempDir()
		cmd := exec.Command(switchyardBinary(t), append(args, "-data-dir", dataDir)...)
		cmd.Env = hermeticEnv(t)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		want := args[len(args)-2] + " " + busy + ": listen tcp " + busy + ": bind: address already in use: another process listens there; stop it, or give " + args[len(args)-2] + " another port"
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), want) {
			t.Errorf("switchyard %q with the port in use: %v, want exit status 1 and %q:\n%s", args, err, want, out)
		}
		// Found before the team directory is opened: a second copy
		// started by mistake creates (or migrates) nothing.
		if entries, err := os.ReadDir(dataDir); err != nil || len(entries) != 0 {
			t.Errorf("switchyard %q with the port in use left %v in its data directory (%v), want nothing", args, entries, err)
		}
	}
}
