package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/internal/testserver"
)

const adminToken = "process-test-token"

var built struct {
	once sync.Once
	path string
	err  error
}

// binary builds switchyard once per test run.
func binary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "switchyard-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "switchyard")
		out, err := exec.Command("go", "build", "-o", built.path, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	if built.path != "" {
		_ = os.RemoveAll(filepath.Dir(built.path))
	}
	os.Exit(code)
}

// process is a running switchyard binary.
type process struct {
	cmd    *exec.Cmd
	url    string
	client teamsv1connect.TeamsServiceClient
	exited chan struct{}
}

// startProcess runs switchyard on a free loopback port with the team
// directory in dataDir, and waits until it serves.
// env entries override the environment (the last of a name wins).
func startProcess(t *testing.T, dataDir string, env ...string) *process {
	t.Helper()
	cmd := exec.Command(binary(t), "-addr", "127.0.0.1:0", "-data-dir", dataDir, "-log-format", "json", "-shutdown-grace", "5s")
	cmd.Env = append(os.Environ(), "SWITCHYARD_ADMIN_TOKEN="+adminToken, "SWITCHYARD_POSTGRES_DSN=")
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "switchyard serving" {
				addr <- line.Addr
			}
			if line.Msg != "rpc" { // one line per call would bury the rest
				t.Log("switchyard:", sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.exited:
		t.Fatal("switchyard exited before serving")
	case <-time.After(30 * time.Second):
		t.Fatal("switchyard did not start serving within 30s")
	}
	p.client = teamsv1connect.NewTeamsServiceClient(testserver.NewH2CClient(), p.url, connect.WithGRPC())
	return p
}

func (p *process) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("switchyard did not stop on SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("switchyard exited with %d after SIGTERM, want 0", code)
	}
}

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
	p := startProcess(t, dir)
	p.del(t, "Boston")
	for i := range 5 {
		p.put(t, fmt.Sprintf("Kill City %d", i), "Survivors")
	}
	p.put(t, "Miami", "Sharks")
	p.kill9(t)

	p = startProcess(t, dir)
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
	p := startProcess(t, dir)
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

	p = startProcess(t, dir)
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
	a, b := startProcess(t, dir), startProcess(t, dir)
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
	cmd := exec.Command(binary(t), "-addr", "127.0.0.1:0", "-data-dir", filepath.Join(file, "sub"))
	cmd.Env = append(os.Environ(), "SWITCHYARD_POSTGRES_DSN=")
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
	a, b := startProcess(t, t.TempDir(), dsn), startProcess(t, t.TempDir(), dsn)
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
	c := startProcess(t, t.TempDir(), dsn)
	if got := c.nickname(t, "Miami"); got != "Sharks" {
		t.Errorf("after both replicas stopped, Miami is %q", got)
	}
	if got := c.nickname(t, "Boston"); got != "" {
		t.Errorf("after a restart, deleted seed team Boston is back: %q", got)
	}
}
