//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
)

// adminToken enables TeamsService writes on the server under test.
const adminToken = "e2e-admin-token"

// Set up by TestMain.
var (
	repoRoot string // the repository's root directory
	binDir   string // switchyard, the demo clients, grpcurl and buf
	addr     string // "127.0.0.1:PORT" of the running switchyard
	baseURL  string // "http://" + addr
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	if repoRoot, err = filepath.Abs(".."); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "switchyard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	binDir = filepath.Join(tmp, "bin")

	if err := buildBinaries(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build:", err)
		return 1
	}
	srv, err := startSwitchyard(filepath.Join(tmp, "data"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start switchyard:", err)
		return 1
	}
	code := m.Run()
	if err := srv.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: switchyard did not stop cleanly:", err)
		fmt.Fprintln(os.Stderr, "---- switchyard log ----\n"+srv.log.String())
		return 1
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, "---- switchyard log (last 30 lines) ----\n"+lastLines(srv.log.String(), 30))
	}
	return code
}

// buildBinaries builds what the tests run: the server with the race
// detector (a data race under real traffic fails the suite at shutdown), the
// demo clients, and the pinned grpcurl and buf.
func buildBinaries() error {
	builds := [][]string{
		{"build", "-race", "-o", binDir + "/", "./cmd/switchyard"},
		{"build", "-o", binDir + "/", "./cmd/teams-client", "./cmd/greeter-client", "./cmd/routeguide-client", "./cmd/keywords-client", "./cmd/summator-client"},
		{"build", "-modfile=tools/go.mod", "-o", binDir + "/", "github.com/fullstorydev/grpcurl/cmd/grpcurl"},
		{"build", "-modfile=tools/buf/go.mod", "-o", binDir + "/", "github.com/bufbuild/buf/cmd/buf"},
	}
	for _, args := range builds {
		cmd := exec.Command("go", args...)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

type process struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan error
}

// noDefaultDataDir is XDG_DATA_HOME for the server under test: below
// /dev/null, so a switchyard started without -data-dir fails at once
// instead of reading and changing the user's real team directory.
const noDefaultDataDir = "/dev/null/tests-must-pass-data-dir"

// startSwitchyard starts the binary on a free loopback port with the team
// directory in dataDir, and waits for the line that announces the address.
func startSwitchyard(dataDir string) (*process, error) {
	cmd := exec.Command(filepath.Join(binDir, "switchyard"), "-addr", "127.0.0.1:0", "-data-dir", dataDir,
		"-log-format", "json", "-shutdown-grace", "5s")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+noDefaultDataDir, "SWITCHYARD_POSTGRES_DSN=",
		"SWITCHYARD_ADMIN_TOKEN="+adminToken)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, log: new(syncBuffer), done: make(chan error, 1)}
	found := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stderr)
		lines.Buffer(nil, 1<<20)
		for lines.Scan() {
			p.log.WriteString(lines.Text() + "\n")
			var entry struct{ Msg, Addr string }
			if json.Unmarshal(lines.Bytes(), &entry) == nil && entry.Msg == "switchyard serving" {
				select {
				case found <- entry.Addr:
				default:
				}
			}
		}
		p.done <- cmd.Wait()
	}()
	select {
	case addr = <-found:
		baseURL = "http://" + addr
		return p, nil
	case err := <-p.done:
		return nil, fmt.Errorf("exited before serving (%v):\n%s", err, p.log.String())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("no \"switchyard serving\" line within 30s:\n%s", p.log.String())
	}
}

// stop sends SIGTERM and expects a graceful exit with status 0.
func (p *process) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err := <-p.done:
		return err
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		return errors.New("still running 20s after SIGTERM; killed")
	}
}

// need skips the test, loudly, when an external command is missing outside
// CI; in CI (CI=true) a missing command fails the test, since .ci/run
// installs it.
func need(t *testing.T, command string) {
	t.Helper()
	if _, err := exec.LookPath(command); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (.ci/run installs it): %v", command, err)
		}
		t.Skipf("SKIPPING: %s is not installed; install it to run this test (CI fails here)", command)
	}
}

// result is what a command did.
type result struct {
	stdout, stderr string
	exitCode       int
}

// run runs name (a file in binDir, or else a command on PATH) with args in
// the repository root and returns its output. It fails the test only when the
// command cannot be started or runs past the timeout; callers check the exit
// code.
func run(t *testing.T, stdin string, name string, args ...string) result {
	t.Helper()
	path := filepath.Join(binDir, name)
	if _, err := os.Stat(path); err != nil {
		path = name
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = repoRoot
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && ctx.Err() == nil:
		res.exitCode = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, res.stdout, res.stderr)
	}
	return res
}

// mustRun is run that also requires exit status 0.
func mustRun(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	res := run(t, stdin, name, args...)
	if res.exitCode != 0 {
		t.Fatalf("%s %q: exit status %d\nstdout:\n%s\nstderr:\n%s", name, args, res.exitCode, res.stdout, res.stderr)
	}
	return res.stdout
}

// jsonStream decodes a sequence of JSON objects (how grpcurl and buf curl
// print streamed messages).
func jsonStream(t *testing.T, out string) []map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var msgs []map[string]any
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return msgs
		} else if err != nil {
			t.Fatalf("output is not a stream of JSON objects: %v\n%s", err, out)
		}
		msgs = append(msgs, m)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
