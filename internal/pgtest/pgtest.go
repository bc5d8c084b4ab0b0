// Package pgtest starts a private PostgreSQL server for tests: a fresh
// cluster in a temporary directory, listening only on a unix socket in that
// directory, stopped when the tests end. It needs the server binaries
// (Debian's postgresql package; .ci/run installs it). Without them a test
// is skipped with a loud message, except under CI=true, where it fails.
package pgtest

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// Server is a running private PostgreSQL.
type Server struct {
	dir  string
	cmd  *exec.Cmd
	done chan error
	log  *bytes.Buffer

	mu sync.Mutex
	n  int
}

// Pid is the postmaster's process id: the processes serving the
// server's sessions are its children.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// BinDir finds the PostgreSQL server binaries (initdb, postgres):
// $PG_BIN_DIR, then the newest /usr/lib/postgresql/*/bin, then $PATH.
func BinDir() (string, error) {
	if d := os.Getenv("PG_BIN_DIR"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("PG_BIN_DIR=%s has no initdb: %w", d, err)
		}
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries (initdb) found: apt-get install postgresql, or set PG_BIN_DIR")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Require skips the test when PostgreSQL is not installed, loudly, or fails
// it under CI, where every test must run.
func Require(t testing.TB) string {
	t.Helper()
	dir, err := BinDir()
	if err == nil {
		return dir
	}
	if os.Getenv("CI") != "" && os.Getenv("CI") != "false" {
		t.Fatalf("CI: PostgreSQL tests cannot be skipped: %v", err)
	}
	msg := "\n" + `!!!!!!!! SKIPPING the PostgreSQL tests: ` + err.Error() + ` !!!!!!!!` + "\n"
	fmt.Fprint(os.Stderr, msg)
	t.Skip(msg)
	return ""
}

// Options tune StartWith's server.
type Options struct {
	// Durable keeps fsync on, as a production server has it (benchmarks);
	// tests leave it off, which is faster and loses nothing they need.
	Durable bool
	// SharedBuffers is shared_buffers; "16MB" when empty.
	SharedBuffers string
}

// Start initializes and starts a cluster for tests. Call Stop when done
// (TestMain).
func Start(binDir string) (*Server, error) { return StartWith(binDir, Options{}) }

// StartWith initializes and starts a cluster in a temporary directory of
// its own, reachable only through a unix socket there. Call Stop when
// done. As root it runs the server as the "postgres" user, which
// PostgreSQL requires.
func StartWith(binDir string, o Options) (*Server, error) {
	return startCluster(binDir, o, "initdb", "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
}

// StartStandby starts a hot standby of primary in a directory of its
// own: a copy of its cluster (pg_basebackup -R) that replays its WAL,
// streamed asynchronously, and refuses writes until Promote. Call Stop
// when done.
func StartStandby(binDir string, primary *Server, o Options) (*Server, error) {
	return startCluster(binDir, o, "pg_basebackup", "-h", primary.dir, "-p", "5432", "-U", "postgres",
		"-R", "-X", "stream", "-c", "fast", "--no-sync")
}

// startCluster makes a server's cluster with tool (initdb, pg_basebackup)
// run with args and -D, as the user the server runs as, then starts it.
func startCluster(binDir string, o Options, tool string, args ...string) (*Server, error) {
	s, cred, err := newServer()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(s.dir, "data")
	cmd := exec.Command(filepath.Join(binDir, tool), append(args, "-D", data)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(s.dir)
		return nil, fmt.Errorf("%s: %v\n%s", tool, err, out)
	}
	if err := s.start(binDir, data, cred, o); err != nil {
		return nil, err
	}
	return s, nil
}

// Promote makes a standby (StartStandby) a primary, and waits until it
// takes writes.
func (s *Server) Promote(ctx context.Context) error {
	db, err := sql.Open("pgx", s.dsn("postgres"))
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	var done bool
	if err := db.QueryRowContext(ctx, `SELECT pg_promote(true, 30)`).Scan(&done); err != nil || !done {
		return fmt.Errorf("pg_promote: %v (promoted: %v)\n%s", err, done, s.log)
	}
	return nil
}

// newServer makes the server's private directory, owned by the user the
// server runs as.
func newServer() (*Server, *syscall.Credential, error) {
	dir, err := os.MkdirTemp("", "switchyard-pg-")
	if err != nil {
		return nil, nil, err
	}
	s := &Server{dir: dir, done: make(chan error, 1), log: new(bytes.Buffer)}
	cred, err := credential()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			_ = os.RemoveAll(dir)
			return nil, nil, err
		}
		// The cluster's parent directories must be reachable by that user.
		for d := filepath.Dir(dir); d != filepath.Dir(d); d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
				_ = os.RemoveAll(dir)
				return nil, nil, fmt.Errorf("%s is not searchable by the postgres user: set TMPDIR to a world-searchable directory", d)
			}
		}
	}
	return s, cred, nil
}

// start runs the server on the cluster in data, and waits until it
// answers; on failure its directory is removed.
func (s *Server) start(binDir, data string, cred *syscall.Credential, o Options) error {
	// No TCP at all: the socket lives in the private directory, so the port
	// number only names the socket file and can clash with nothing.
	fsync, buffers := "off", cmp.Or(o.SharedBuffers, "16MB")
	if o.Durable {
		fsync = "on"
	}
	s.cmd = exec.Command(filepath.Join(binDir, "postgres"), "-D", data,
		"-c", "listen_addresses=", "-c", "unix_socket_directories="+s.dir, "-p", "5432",
		"-c", "fsync="+fsync, "-c", "shared_buffers="+buffers, "-c", "max_connections=100")
	// Pdeathsig: should the test binary die without stopping the server
	// (a timeout, a crash), SIGQUIT ends the server and its children.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		_ = os.RemoveAll(s.dir)
		return err
	}
	go func() { s.done <- s.cmd.Wait() }()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Stop()
		return err
	}
	return nil
}

func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and there is no postgres user to run the server as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (s *Server) dsn(db string) string {
	return fmt.Sprintf("host=%s port=5432 user=postgres dbname=%s sslmode=disable", s.dir, db)
}

func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("postgres exited: %v\n%s", err, s.log)
		default:
		}
		db, err := sql.Open("pgx", s.dsn("postgres"))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err = db.PingContext(ctx)
			cancel()
			_ = db.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after %v: %v\n%s", limit, err, s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// NewDatabase creates an empty database and returns its DSN.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	s.n++
	name := fmt.Sprintf("test_%d", s.n)
	s.mu.Unlock()
	dsn, err := s.CreateDatabase(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// CreateDatabase creates an empty database called name and returns its
// DSN.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	db, err := sql.Open("pgx", s.dsn("postgres"))
	if err != nil {
		return "", err
	}
	defer func() { _ = db.Close() }()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.dsn(name), nil
}

// Dir is the server's private directory (its data and its socket).
func (s *Server) Dir() string { return s.dir }

// Stop ends the server (fast shutdown) and removes its files. It may be
// called again (a test that stops a primary, and defers its Stop).
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGINT)
		var err error
		select {
		case err = <-s.done:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			err = <-s.done
		}
		s.done <- err // for a later Stop
	}
	_ = os.RemoveAll(s.dir)
}

// Shared starts one server for the whole test binary on first use; stop it
// from TestMain with StopShared.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Database returns the DSN of a fresh database on the test binary's shared
// server, skipping or failing (under CI) the test when PostgreSQL is missing.
func Database(t testing.TB) string {
	t.Helper()
	bin := Require(t)
	shared.once.Do(func() { shared.srv, shared.err = Start(bin) })
	if shared.err != nil {
		t.Fatalf("start PostgreSQL: %v", shared.err)
	}
	return shared.srv.NewDatabase(t)
}

// StopShared stops the server Database started, if any.
func StopShared() {
	if shared.srv != nil {
		shared.srv.Stop()
	}
}
