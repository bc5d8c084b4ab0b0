package main

import (
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
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// postgres is a private PostgreSQL server for the PostgreSQL row, as
// internal/pgtest starts one for tests: a fresh cluster in a temporary
// directory, reachable only through a unix socket there, removed after.
type postgres struct {
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// pgBinDir finds initdb and postgres: $PG_BIN_DIR, the newest
// /usr/lib/postgresql/*/bin, then $PATH.
func pgBinDir() (string, error) {
	if d := os.Getenv("PG_BIN_DIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return pgVersion(b) - pgVersion(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries (initdb) found; set PG_BIN_DIR")
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// startPostgres initializes and starts a cluster in a directory of its own
// under $TMPDIR; as root it runs the server as the "postgres" user, which
// PostgreSQL requires.
func startPostgres(binDir string) (*postgres, error) {
	dir, err := os.MkdirTemp("", "switchyard-bench-pg-")
	if err != nil {
		return nil, err
	}
	p := &postgres{dir: dir, done: make(chan struct{})}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and there is no postgres user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		// The cluster's parent directories must be reachable by that user.
		for d := dir; d != filepath.Dir(d); d = filepath.Dir(d) {
			if d == dir {
				if err := os.Chown(d, uid, gid); err != nil {
					_ = os.RemoveAll(dir)
					return nil, err
				}
			} else if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
				_ = os.RemoveAll(dir)
				return nil, fmt.Errorf("%s is not searchable by the postgres user: set TMPDIR to a world-searchable directory", d)
			}
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(binDir, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	p.cmd = exec.Command(filepath.Join(binDir, "postgres"), "-D", data,
		"-c", "listen_addresses=", "-c", "unix_socket_directories="+dir, "-p", "5432",
		"-c", "shared_buffers=64MB", "-c", "max_connections=100")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	if err := p.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	if err := p.ready(30 * time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

func (p *postgres) dsn(db string) string {
	return fmt.Sprintf("host=%s port=5432 user=postgres dbname=%s sslmode=disable", p.dir, db)
}

func (p *postgres) ready(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-p.done:
			return errors.New("postgres exited at start")
		default:
		}
		db, err := sql.Open("pgx", p.dsn("postgres"))
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
			return fmt.Errorf("postgres not ready after %v: %v", limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createDatabase makes an empty database for one server.
func (p *postgres) createDatabase(name string) error {
	db, err := sql.Open("pgx", p.dsn("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec("CREATE DATABASE " + name)
	return err
}

// stop ends the server (fast shutdown); the caller removes the directory.
func (p *postgres) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	_ = os.RemoveAll(p.dir)
}
