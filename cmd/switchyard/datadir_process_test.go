package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// Permission bits do not stop root, and tests may run as root (CI does).
// Then the switchyard under test runs as the unprivileged user nobody, for
// whom the bits hold; every file it must reach is made reachable by others.
const nobody = 65534

// asUnprivileged makes cmd run as nobody when the test runs as root.
func asUnprivileged(cmd *exec.Cmd) {
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
}

// reachableDir is a fresh temporary directory that the process of
// asUnprivileged can enter (t.TempDir and its parent are 0700).
func reachableDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// sharedDataDir is a new data directory in reachableDir that anyone may
// write in, the unprivileged user a process runs as included.
func sharedDataDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(reachableDir(t), "data")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	return dir
}

// startOnce runs switchyard with args until it serves (then stops it with
// SIGTERM) or exits; it returns whether it served, its exit status and its
// log.
func startOnce(t *testing.T, env []string, args ...string) (served bool, code int, log string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, switchyardBinary(t), append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(hermeticEnv(t), env...)
	asUnprivileged(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		out strings.Builder
	)
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		mu.Lock()
		out.WriteString(lines.Text() + "\n")
		mu.Unlock()
		if strings.Contains(lines.Text(), "switchyard serving") && !served {
			served = true
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return served, code, out.String()
}

// A data directory the server cannot write stops it at start-up with a
// message naming the directory and the problem, not SQLite's "unable to
// open database file (14)".
func TestUnwritableDataDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(reachableDir(t), "data")
	if err := os.Mkdir(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	served, code, log := startOnce(t, nil, "-data-dir", dir)
	if served || code != 1 {
		t.Errorf("served %v, exit status %d; want a refusal (1)", served, code)
	}
	for _, want := range []string{"data directory " + dir + " is not writable", "permission denied", "-data-dir"} {
		if !strings.Contains(log, want) {
			t.Errorf("the error does not say %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "unable to open database file") {
		t.Errorf("the error is SQLite's, not one a person can act on:\n%s", log)
	}

	// The same directory made writable serves: the refusal was the
	// permission, not the set-up.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if served, code, log := startOnce(t, nil, "-data-dir", dir); !served || code != 0 {
		t.Errorf("with the directory writable: served %v, exit status %d:\n%s", served, code, log)
	}
}

// A read-only teams.db is refused at start-up, naming the file: the server
// used to start claiming writes_enabled=true and fail every write as
// internal.
func TestReadOnlyTeamsDB(t *testing.T) {
	t.Parallel()
	dir := sharedDataDir(t)
	st, err := sqlstore.OpenSQLite(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, sqlstore.SQLiteFile)
	if err := os.Chmod(db, 0o444); err != nil {
		t.Fatal(err)
	}
	served, code, log := startOnce(t, []string{"SWITCHYARD_ADMIN_TOKEN=" + adminToken}, "-data-dir", dir)
	if served || code != 1 {
		t.Errorf("served %v, exit status %d; want a refusal (1):\n%s", served, code, log)
	}
	if !strings.Contains(log, db+" is not writable") || !strings.Contains(log, "permission denied") {
		t.Errorf("the error does not name %s and the permission problem:\n%s", db, log)
	}
	if strings.Contains(log, "writes_enabled=true") || strings.Contains(log, `"writes_enabled":true`) {
		t.Errorf("claimed writes enabled:\n%s", log)
	}

	// Writable again (for root's nobody too), it serves.
	if err := os.Chmod(db, 0o666); err != nil {
		t.Fatal(err)
	}
	if served, code, log := startOnce(t, []string{"SWITCHYARD_ADMIN_TOKEN=" + adminToken}, "-data-dir", dir); !served || code != 0 {
		t.Errorf("with teams.db writable: served %v, exit status %d:\n%s", served, code, log)
	}
}

// The test environment itself: a switchyard started without -data-dir
// fails loudly instead of using the user's real team directory.
func TestTestsCannotUseTheDefaultDataDir(t *testing.T) {
	t.Parallel()
	served, code, log := startOnce(t, nil)
	if served || code != 1 || !strings.Contains(log, noDefaultDataDir+"/switchyard cannot be created") || !strings.Contains(log, "the default data directory") {
		t.Errorf("without -data-dir: served %v, exit status %d:\n%s", served, code, log)
	}
}

// A start that migrated the team directory says so on its start line,
// with the schema it found (0: it made the directory); one that found it
// up to date does not: an operator can tell from the log when an upgrade
// changed the schema.
func TestStartLineSaysItMigrated(t *testing.T) {
	t.Parallel()
	dir := sharedDataDir(t)
	served, code, log := startOnce(t, nil, "-data-dir", dir)
	if !served || code != 0 {
		t.Fatalf("served %v, exit status %d:\n%s", served, code, log)
	}
	if !strings.Contains(log, "migrated_from=0 ") {
		t.Errorf("the first start's log does not say migrated_from=0:\n%s", log)
	}
	served, code, log = startOnce(t, nil, "-data-dir", dir)
	if !served || code != 0 {
		t.Fatalf("again: served %v, exit status %d:\n%s", served, code, log)
	}
	if strings.Contains(log, "migrated_from") {
		t.Errorf("a start on a directory up to date says it migrated:\n%s", log)
	}
}
