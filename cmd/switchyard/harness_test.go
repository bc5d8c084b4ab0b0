package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/internal/testserver"
)

// The tests of this package run the real switchyard binary: built once,
// started on a free loopback port with its own data directory, and
// signalled as an orchestrator would.

const adminToken = "process-test-token"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func switchyardBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "switchyard-bin-")
		if err != nil {
			buildErr = err
			return
		}
		// Readable by all: tests run as root start it as an unprivileged
		// user too (asUnprivileged).
		if err := os.Chmod(dir, 0o755); err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "switchyard")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	if addr := os.Getenv("SWITCHYARD_TEST_VICTIM"); addr != "" {
		victimClient(addr) // never returns: the parent kills it
	}
	code := m.Run()
	pgtest.StopShared()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// noDefaultDataDir is XDG_DATA_HOME for every switchyard a test starts. It
// lies below /dev/null, so a process started without -data-dir fails at
// once with an error naming this path, instead of reading and changing the
// user's real team directory ($XDG_DATA_HOME/switchyard or
// ~/.local/share/switchyard), which no test may touch.
const noDefaultDataDir = "/dev/null/tests-must-pass-data-dir"

// hermeticEnv is the environment of a switchyard a test starts: the
// caller's, without its PostgreSQL DSN or admin token, and with
// noDefaultDataDir.
func hermeticEnv(t *testing.T) []string {
	t.Helper()
	return append(os.Environ(), "XDG_DATA_HOME="+noDefaultDataDir, "SWITCHYARD_POSTGRES_DSN=", "SWITCHYARD_ADMIN_TOKEN=")
}

// process is a running switchyard binary.
type process struct {
	cmd    *exec.Cmd
	addr   string
	url    string
	client teamsv1connect.TeamsServiceClient // over gRPC

	mu  sync.Mutex
	log strings.Builder

	exited  chan struct{}
	exitErr error
}

// startProcess runs switchyard with args on 127.0.0.1:0 and waits until it
// serves. Unless args name one, the team directory is a fresh temporary
// -data-dir; PostgreSQL and the admin token are off unless env sets them.
func startProcess(t *testing.T, args ...string) *process {
	return startProcessEnv(t, nil, args...)
}

// startTeams runs switchyard on the team directory in dataDir with writes
// enabled by adminToken; env entries override the environment.
func startTeams(t *testing.T, dataDir string, env ...string) *process {
	return startProcessEnv(t, append([]string{"SWITCHYARD_ADMIN_TOKEN=" + adminToken}, env...),
		"-data-dir", dataDir, "-shutdown-grace", "5s")
}

func startProcessEnv(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	full := []string{"-addr", "127.0.0.1:0", "-log-format", "json"}
	if !slices.Contains(args, "-data-dir") {
		full = append(full, "-data-dir", t.TempDir())
	}
	cmd := exec.Command(switchyardBinary(t), append(full, args...)...)
	cmd.Env = append(hermeticEnv(t), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "switchyard serving" {
				addrCh <- rec.Addr
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("switchyard log:\n%s", p.logs())
		}
	})
	select {
	case p.addr = <-addrCh:
		p.url = "http://" + p.addr
	case <-p.exited:
		t.Fatalf("switchyard exited before serving:\n%s", p.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("switchyard did not start:\n%s", p.logs())
	}
	p.client = teamsv1connect.NewTeamsServiceClient(testserver.NewH2CClient(), p.url, connect.WithGRPC())
	return p
}

func (p *process) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// wait returns the exit code once the process has exited, or fails.
func (p *process) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		var ee *exec.ExitError
		if errors.As(p.exitErr, &ee) {
			return ee.ExitCode()
		}
		if p.exitErr != nil {
			t.Fatal(p.exitErr)
		}
		return 0
	case <-time.After(within):
		t.Fatalf("switchyard still running after %v:\n%s", within, p.logs())
		return -1
	}
}

func (p *process) waitLog(t *testing.T, msg string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(p.logs(), `"msg":"`+msg+`"`) {
			return
		}
	}
	t.Fatalf("no %q in the log:\n%s", msg, p.logs())
}

// kill9 ends the process with SIGKILL, as a crash would.
func (p *process) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// stop sends SIGTERM and expects a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("switchyard exited with %d after SIGTERM, want 0", code)
	}
}
