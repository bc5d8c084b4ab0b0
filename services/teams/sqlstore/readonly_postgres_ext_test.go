package sqlstore_test

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// A database made read-only under running replicas (maintenance, or a
// failover that left the DSN on a standby): writes answer UNAVAILABLE,
// which clients retry, not INTERNAL; reads go on; a replica still starts
// and serves reads, as its schema needs no migration; and once the
// database takes writes again, so does the store. Sessions keep the
// read-only setting they began with, and the pool kept them for ever:
// before, every write failed long after the setting was gone.
func TestPostgresReadOnlyDatabase(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	s := openPostgres(t, dsn)
	defer s.Close()
	ctx := t.Context()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adminConn, err := admin.Conn(ctx) // one session, begun before the change
	if err != nil {
		t.Fatal(err)
	}
	defer adminConn.Close()
	exec := func(query string, args ...any) {
		t.Helper()
		if _, err := adminConn.ExecContext(ctx, query, args...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	put := func(i int) error {
		_, _, err := s.Put(ctx, teams.Team{City: fmt.Sprintf("Read Only %d", i), Nickname: "N"})
		return err
	}
	if err := put(0); err != nil {
		t.Fatal(err)
	}

	// Read-only for every session begun from now on: end the store's,
	// as a failover or a restart of the server would.
	name := dsnValue(dsn, "dbname")
	exec(`ALTER DATABASE "` + name + `" SET default_transaction_read_only = on`)
	exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name)
	for i := 1; i <= 5; i++ {
		if err := put(i); !errors.Is(err, teams.ErrUnavailable) || errors.Is(err, teams.ErrMaybeMade) {
			t.Errorf("Put %d on a read-only database: %v, want ErrUnavailable (and not maybe made)", i, err)
		}
	}
	readable := func(s teams.Store, who string) {
		t.Helper()
		var err error
		for range 5 { // a session ended under the pool may fail a read first
			if _, err = s.Get(ctx, "Chicago"); err == nil {
				return
			}
		}
		t.Errorf("%s: Get on a read-only database: %v", who, err)
	}
	readable(s, "the running store")
	started := openPostgres(t, dsn)
	defer started.Close()
	readable(started, "a store started on the read-only database")

	exec(`ALTER DATABASE "` + name + `" RESET default_transaction_read_only`)
	recovered, ok := 0, 0
	for i := 10; i < 40 && ok < 5; i++ {
		if err := put(i); err != nil {
			ok = 0
			continue
		}
		if ok++; recovered == 0 {
			recovered = i - 9
		}
	}
	if ok < 5 {
		t.Fatalf("the database takes writes again, and the store's still fail: %d in a row succeeded of 30 tries", ok)
	}
	t.Logf("writes succeed again from the %d. try on", recovered)
}

// A database that refuses writes and whose schema needs migrating (here
// a new one) stops the start with what to do, not a bare SQLSTATE.
func TestPostgresReadOnlyDatabaseToMigrate(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(t.Context(), `ALTER DATABASE "`+dsnValue(dsn, "dbname")+`" SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.OpenPostgres(t.Context(), dsn)
	if err == nil {
		s.Close()
		t.Fatal("opened a read-only database whose schema needs migrating")
	}
	if !strings.Contains(err.Error(), "refuses writes") || !strings.Contains(err.Error(), "target_session_attrs=read-write") {
		t.Errorf("start on a read-only database to migrate: %v; want what to do", err)
	}
}
