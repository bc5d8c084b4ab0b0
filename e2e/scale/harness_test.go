//go:build scale

package scale

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

const adminToken = "scale-admin-token"

var (
	repoRoot string // the repository's root
	binary   string // switchyard built from the working tree
	scratch  string // removed when the tests end
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var err error
	if repoRoot, err = filepath.Abs("../.."); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "switchyard-scale-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	scratch = tmp
	binary = filepath.Join(tmp, "switchyard")
	build := exec.Command("go", "build", "-o", binary, "./cmd/switchyard")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "scale: go build: %v\n%s", err, out)
		return 1
	}
	defer pgtest.StopShared()
	return m.Run()
}

// replica is a running switchyard process.
type replica struct {
	name   string
	cmd    *exec.Cmd
	addr   string
	url    string
	client teamsv1connect.TeamsServiceClient // direct, over gRPC

	mu  sync.Mutex
	log strings.Builder

	exited chan struct{}
}

// start runs bin with args (plus a loopback address and JSON logs) and env,
// and waits until it serves.
func start(t *testing.T, name, bin string, env []string, args ...string) *replica {
	t.Helper()
	full := append([]string{"-addr", "127.0.0.1:0", "-log-format", "json", "-log-level", "debug"}, args...)
	cmd := exec.Command(bin, full...)
	// No default data directory: a replica started without -data-dir
	// (PostgreSQL's) must not touch the user's home.
	cmd.Env = append(os.Environ(), "SWITCHYARD_POSTGRES_DSN=", "SWITCHYARD_ADMIN_TOKEN="+adminToken,
		"XDG_DATA_HOME=/dev/null/switchyard-scale-has-no-default-data-dir")
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, cmd: cmd, exited: make(chan struct{})}
	addrCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			r.mu.Lock()
			r.log.WriteString(line + "\n")
			r.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "switchyard serving" {
				addrCh <- rec.Addr
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-r.exited
		if t.Failed() {
			t.Logf("%s log:\n%s", name, r.logs())
		}
	})
	select {
	case r.addr = <-addrCh:
		r.url = "http://" + r.addr
	case <-r.exited:
		t.Fatalf("%s exited before serving:\n%s", name, r.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start:\n%s", name, r.logs())
	}
	r.client = teamsv1connect.NewTeamsServiceClient(testserver.NewH2CClient(), r.url, connect.WithGRPC())
	return r
}

func (r *replica) logs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// records returns the log records whose msg is msg.
func (r *replica) records(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(r.logs(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// waitLog waits until a record with msg is logged (the n-th, from 1).
func (r *replica) waitLog(t *testing.T, msg string, n int, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); len(r.records(msg)) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: fewer than %d %q log lines after %v:\n%s", r.name, n, msg, within, r.logs())
		}
	}
}

func (r *replica) kill9(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-r.exited
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return c
}

func put(ctx context.Context, c teamsv1connect.TeamsServiceClient, city, nickname string) error {
	req := connect.NewRequest(&teamsv1.PutTeamRequest{City: city, Nickname: nickname})
	req.Header().Set("Authorization", "Bearer "+adminToken)
	_, err := c.PutTeam(ctx, req)
	return err
}

func del(ctx context.Context, c teamsv1connect.TeamsServiceClient, city string) error {
	req := connect.NewRequest(&teamsv1.DeleteTeamRequest{City: city})
	req.Header().Set("Authorization", "Bearer "+adminToken)
	_, err := c.DeleteTeam(ctx, req)
	return err
}

// nickname returns city's team, "" when there is none.
func nickname(ctx context.Context, c teamsv1connect.TeamsServiceClient, city string) (string, error) {
	res, err := c.GetTeam(ctx, connect.NewRequest(&teamsv1.GetTeamRequest{City: city}))
	if connect.CodeOf(err) == connect.CodeNotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return res.Msg.GetNickname(), nil
}

// seenWithin polls city through c until it reads want, and fails after
// bound; it returns how long it took.
func seenWithin(t *testing.T, c teamsv1connect.TeamsServiceClient, city, want string, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var got string
	var err error
	for time.Since(start) < bound {
		if got, err = nickname(ctxFor(t, bound), c, city); err == nil && got == want {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Errorf("%s read as %q (%v) for %v; want %q", city, got, err, bound, want)
	return bound
}

// crossProcess: a team written through a is read through b within the
// feed's bound, and its delete too; and b's change feed delivered both to
// a subscriber (b logs what its feed delivers at debug level) within the
// bound: what a cache in b would have needed.
func crossProcess(t *testing.T, a, b *replica, city string) {
	t.Helper()
	key := strings.ToLower(city)
	before := b.changes(key)
	if err := put(ctxFor(t, 10*time.Second), a.client, city, "Written"); err != nil {
		t.Fatal(err)
	}
	acked := time.Now()
	t.Logf("write via %s read via %s after %v", a.name, b.name, seenWithin(t, b.client, city, "Written", time.Second))
	b.waitChange(t, key, before+1, acked)
	if err := del(ctxFor(t, 10*time.Second), a.client, city); err != nil {
		t.Fatal(err)
	}
	acked = time.Now()
	t.Logf("delete via %s read via %s after %v", a.name, b.name, seenWithin(t, b.client, city, "", time.Second))
	b.waitChange(t, key, before+2, acked)
}

// changes counts the changes of key r's feed delivered (its debug log).
func (r *replica) changes(key string) int {
	n := 0
	for _, rec := range r.records("team change") {
		if rec["key"] == key {
			n++
		}
	}
	return n
}

// waitChange waits until r's feed delivered the n-th change of key, at
// most a second after acked (log lines are written in batches, so the
// wait for the line itself may be longer; the delivery's time is the
// record's).
func (r *replica) waitChange(t *testing.T, key string, n int, acked time.Time) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); r.changes(key) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s's feed did not deliver change %d of %q:\n%s", r.name, n, key, r.logs())
		}
	}
	var at time.Time
	for _, rec := range r.records("team change") {
		if rec["key"] == key {
			at, _ = time.Parse(time.RFC3339Nano, rec["time"].(string))
		}
	}
	if lag := at.Sub(acked); lag > time.Second {
		t.Errorf("%s's feed delivered %q %v after the write was acknowledged; bound 1s", r.name, key, lag)
	} else {
		t.Logf("%s's feed delivered %q %v after the acknowledgement", r.name, key, lag)
	}
}
