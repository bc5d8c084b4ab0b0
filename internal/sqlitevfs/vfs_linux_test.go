package sqlitevfs_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"path/filepath"
	"syscall"
	"testing"

	sqlitelib "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/switchyard/switchyard/internal/sqlitevfs"
)

// open opens path in WAL mode with synchronous=FULL, as the team store
// does, through vfs ("" for SQLite's default).
func open(t *testing.T, path, vfs string) *sql.DB {
	t.Helper()
	q := url.Values{"_journal_mode": {"WAL"}, "_synchronous": {"FULL"}}
	if vfs != "" {
		q.Set("vfs", vfs)
	}
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Opaque: filepath.ToSlash(path), RawQuery: q.Encode()}).String())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func insert(ctx context.Context, db *sql.DB, v int) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, v); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func count(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Through the VFS every commit syncs the WAL by the VFS's fsync, once at
// least per commit, and what was committed is in the file for SQLite's
// own VFS to read.
func TestCommitsSyncThroughTheVFS(t *testing.T) {
	vfs, err := sqlitevfs.Register()
	if err != nil || vfs == "" {
		t.Fatalf("Register = %q, %v", vfs, err)
	}
	path := filepath.Join(t.TempDir(), "t.db")
	db := open(t, path, vfs)
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	const commits = 5
	parked, blocking := counted(func() {
		for i := range commits {
			if err := insert(ctx, db, i); err != nil {
				t.Fatal(err)
			}
		}
	})
	if parked+blocking < commits {
		t.Errorf("%d commits took %d parked and %d blocking fsyncs, want at least one each", commits, parked, blocking)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, open(t, path, "")); n != commits {
		t.Errorf("SQLite's own VFS reads %d rows, want %d", n, commits)
	}
}

// A commit whose fsync fails is not acknowledged: it fails with
// SQLITE_IOERR_FSYNC, as SQLite's own unixSync reports it, its row is
// not there to read, and the next commit, on a working disk, succeeds.
func TestFailedFsyncFailsTheCommit(t *testing.T) {
	vfs, err := sqlitevfs.Register()
	if err != nil {
		t.Fatal(err)
	}
	db := open(t, filepath.Join(t.TempDir(), "t.db"), vfs)
	ctx := t.Context()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	restore := sqlitevfs.FailFsyncs(syscall.EIO)
	err = insert(ctx, db, 1)
	restore()
	var se *sqlitelib.Error
	if !errors.As(err, &se) || se.Code() != sqlite3.SQLITE_IOERR_FSYNC {
		t.Fatalf("commit with a failing fsync = %v, want SQLITE_IOERR_FSYNC (%d)", err, sqlite3.SQLITE_IOERR_FSYNC)
	}
	if n := count(t, db); n != 0 {
		t.Errorf("after the failed commit %d rows are there, want 0", n)
	}
	if err := insert(ctx, db, 2); err != nil {
		t.Fatalf("commit after the disk recovered: %v", err)
	}
	if n := count(t, db); n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
}
