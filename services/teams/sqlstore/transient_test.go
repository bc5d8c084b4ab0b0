package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchyard/switchyard/services/teams"
)

// Which failures a retry may get past (ctxErr wraps them in
// teams.ErrUnavailable, and the handler answers UNAVAILABLE), with the
// drivers' own errors.
func TestTransientErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	open := func() *sql.Conn {
		db, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=0&_journal_mode=WAL")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		c, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	ctx := t.Context()
	holder, other := open(), open()
	if _, err := holder.ExecContext(ctx, `CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	if _, err := holder.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	_, busy := other.ExecContext(ctx, `BEGIN IMMEDIATE`)
	_, syntax := other.ExecContext(ctx, `SELEC 1`)
	_, _ = holder.ExecContext(ctx, `ROLLBACK`)
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"SQLite busy past its wait", busy, true},
		{"SQLite syntax error", syntax, false},
		{"PostgreSQL shutting down (57P01)", &pgconn.PgError{Code: "57P01"}, true},
		{"PostgreSQL connection failure (08006)", &pgconn.PgError{Code: "08006"}, true},
		{"PostgreSQL too many connections (53300)", &pgconn.PgError{Code: "53300"}, true},
		{"PostgreSQL read-only transaction (25006)", &pgconn.PgError{Code: "25006"}, true},
		{"PostgreSQL statement_timeout (57014)", &pgconn.PgError{Code: "57014"}, true},
		{"PostgreSQL lock_timeout (55P03)", &pgconn.PgError{Code: "55P03"}, true},
		{"PostgreSQL password refused (28P01)", &pgconn.PgError{Code: "28P01"}, true},
		{"PostgreSQL role may not log in (28000)", &pgconn.PgError{Code: "28000"}, true},
		{"PostgreSQL database gone (3D000)", &pgconn.PgError{Code: "3D000"}, true},
		{"no host takes writes (target_session_attrs=read-write)", fmt.Errorf("ValidateConnect failed: %w", pgconn.ErrReadOnlyConnection), true},
		{"no host is a primary (target_session_attrs=primary)", fmt.Errorf("ValidateConnect failed: %w", pgconn.ErrStandbyConnection), true},
		{"PostgreSQL bad UTF-8 (22021)", &pgconn.PgError{Code: "22021"}, false},
		{"PostgreSQL unique violation (23505)", &pgconn.PgError{Code: "23505"}, false},
		{"the store closed", errClosed, true},
		{"no such row", sql.ErrNoRows, false},
	} {
		if tc.err == nil {
			t.Fatalf("%s: no error to classify", tc.name)
		}
		if got := transient(tc.err); got != tc.want {
			t.Errorf("%s (%v): transient %v, want %v", tc.name, tc.err, got, tc.want)
		}
		if got := errors.Is(ctxErr(context.Background(), tc.err), teams.ErrUnavailable); got != tc.want {
			t.Errorf("%s: ctxErr wraps ErrUnavailable %v, want %v", tc.name, got, tc.want)
		}
	}
	// A canceled call stays canceled, whatever the driver said.
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ctxErr(canceled, busy); !errors.Is(err, context.Canceled) || errors.Is(err, teams.ErrUnavailable) {
		t.Errorf("busy under a canceled context: %v", err)
	}
}

// A database out of space fails a write as teams.ErrStorageFull, whose
// answer says the write was not made; a read that fails so (PostgreSQL's
// 53100 for a sort or hash that spills to a full temp file) is no write,
// and is not told it was not made.
func TestStorageFullIsAWritesError(t *testing.T) {
	ctx := t.Context()
	s := &Store{}
	full := &pgconn.PgError{Code: "53100", Message: `could not write to file "base/pgsql_tmp/pgsql_tmp1.0": No space left on device`}
	if err := s.writeErr(ctx, ctx, full); !errors.Is(err, teams.ErrStorageFull) {
		t.Errorf("a write out of space: %v, want teams.ErrStorageFull", err)
	}
	if err := s.readErr(ctx, ctx, full); errors.Is(err, teams.ErrStorageFull) {
		t.Errorf("a read out of space: %v, want no teams.ErrStorageFull (its answer says a write was not made)", err)
	}
}
