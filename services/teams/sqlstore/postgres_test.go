package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard/switchyard/internal/pgtest"
)

// The store's connections get small pgx statement caches unless the DSN
// sizes them itself; the feed's listener is configured as the store's,
// under its own application name, which the store's connections do not
// take on.
func TestPGConfig(t *testing.T) {
	for _, tc := range []struct {
		dsn               string
		statements, descs int
	}{
		{"postgres://u@db.example:5432/teams", pgStatementCache, pgStatementCache},
		{"host=db.example user=u dbname=teams", pgStatementCache, pgStatementCache},
		{"postgres://u@db.example/teams?statement_cache_capacity=7", 7, pgStatementCache},
		{"host=db.example description_cache_capacity=9", pgStatementCache, 9},
		{"postgres://u@db.example/teams?statement_cache_capacity=0&description_cache_capacity=0", 0, 0},
		{"postgres://u@db.example/teams?statement_cache_capacity=0&default_query_exec_mode=cache_statement", 0, pgStatementCache},
	} {
		cfg, err := pgConfig(tc.dsn)
		if err != nil {
			t.Fatalf("%s: %v", tc.dsn, err)
		}
		// A DSN that names its mode keeps it; one without the statement
		// cache otherwise describes statements instead.
		wantMode := pgx.QueryExecModeCacheStatement
		switch {
		case strings.Contains(tc.dsn, "default_query_exec_mode"):
		case tc.statements == 0 && tc.descs == 0:
			wantMode = pgx.QueryExecModeDescribeExec
		case tc.statements == 0:
			wantMode = pgx.QueryExecModeCacheDescribe
		}
		if cfg.DefaultQueryExecMode != wantMode {
			t.Errorf("%s: mode %v, want %v", tc.dsn, cfg.DefaultQueryExecMode, wantMode)
		}
		if cfg.StatementCacheCapacity != tc.statements || cfg.DescriptionCacheCapacity != tc.descs {
			t.Errorf("%s: caches %d and %d, want %d and %d", tc.dsn, cfg.StatementCacheCapacity, cfg.DescriptionCacheCapacity, tc.statements, tc.descs)
		}
		f := newPGFeed(cfg, time.Second, nil, nil)
		if got := f.config.RuntimeParams["application_name"]; got != FeedApplicationName {
			t.Errorf("%s: the feed's application_name %q, want %q", tc.dsn, got, FeedApplicationName)
		}
		if got := cfg.RuntimeParams["application_name"]; got != "" {
			t.Errorf("%s: the store's connections took the feed's application_name %q", tc.dsn, got)
		}
		if f.config.StatementCacheCapacity != tc.statements || f.config.Host != "db.example" {
			t.Errorf("%s: the feed's config is not the store's: %+v", tc.dsn, f.config.Config)
		}
	}
}

// A DSN that does not parse is said to, with what pgx found wrong, but
// without quoting it: pgx's own error can carry the password, and the
// error under it a piece of it.
func TestOpenPostgresBadDSN(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://u:s3cret@db.example:notaport/teams":           "the DSN does not parse: invalid port;",
		"postgres://u:s3cret@db.example:5432/teams?sslmode=bogus": "the DSN does not parse: failed to configure TLS;",
		"postgres://u:s3cret@[::1/teams":                          "the DSN does not parse: failed to parse as URL;",
		"host=db.example password=s3cret sslmode=bogus":           "the DSN does not parse: failed to configure TLS;",
		"host=db.example password=s3cret port=x":                  "the DSN does not parse: invalid port;",
		"host=db.example password=s3cret target_session_attrs=x":  "the DSN does not parse: unknown target_session_attrs value: x;",
		// pgx's error under it would quote "s3cret": the password's
		// second word, taken for a setting without "=".
		"host=db.example password=s3cret s3cret": "the DSN does not parse: failed to parse as keyword/value;",
	} {
		_, err := OpenPostgres(context.Background(), dsn)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("OpenPostgres(%q): %v, want an error with %q, without the password", dsn, err, want)
		}
	}
}

// PostgreSQL 12 lacks what the group commit uses: it is refused at open,
// saying which version it is and which is needed.
func TestPGVersion(t *testing.T) {
	for _, c := range []struct {
		num     int
		version string
		ok      bool
	}{
		{120022, "12.22", false},
		{130000, "13.0", true},
		{150018, "15.18 (Debian 15.18-0+deb12u1)", true},
		{180001, "18.1", true},
	} {
		err := pgVersionError(c.num, c.version)
		if c.ok != (err == nil) {
			t.Errorf("PostgreSQL %s: %v, want accepted %v", c.version, err, c.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), c.version) || !strings.Contains(err.Error(), "13 or later")) {
			t.Errorf("PostgreSQL %s: %q names not the version and the one needed", c.version, err)
		}
	}
}

// newRole makes a login role on dsn's server, granted grants (statements
// with %s for the role), dropped when the test ends; it returns the role,
// the DSN for it, and the superuser's connection to the same database.
func newRole(t *testing.T, dsn, prefix string, grants ...string) (role, roleDSN string, admin *sql.DB) {
	t.Helper()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	role = fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	t.Cleanup(func() {
		_, _ = admin.ExecContext(context.Background(), "REVOKE CREATE ON SCHEMA public FROM "+role)
		_, _ = admin.ExecContext(context.Background(), "DROP ROLE "+role)
		_ = admin.Close()
	})
	for _, stmt := range append([]string{"CREATE ROLE %s LOGIN"}, grants...) {
		if _, err := admin.ExecContext(t.Context(), fmt.Sprintf(stmt, role)); err != nil {
			t.Fatal(err)
		}
	}
	return role, strings.Replace(dsn, "user=postgres", "user="+role, 1), admin
}

// A role that may not create the store's tables is told what it needs:
// since PostgreSQL 15 only the owner creates in schema public.
func TestOpenPostgresWithoutCreatePrivilege(t *testing.T) {
	role, roleDSN, admin := newRole(t, pgtest.Database(t), "no_create")
	_, err := OpenPostgres(t.Context(), roleDSN)
	if err == nil || !strings.Contains(err.Error(), "42501") || !strings.Contains(err.Error(), "GRANT CREATE ON SCHEMA public TO role") {
		t.Fatalf("OpenPostgres as a role without CREATE: %v; want the permission error with what the role needs", err)
	}
	if _, err := admin.ExecContext(t.Context(), "GRANT CREATE ON SCHEMA public TO "+role); err != nil {
		t.Fatal(err)
	}
	s, err := OpenPostgres(t.Context(), roleDSN)
	if err != nil {
		t.Fatalf("OpenPostgres after the grant: %v", err)
	}
	_ = s.Close()
}

// Tables another role made can be migrated only by their owner, whatever
// the role may create: the hint says to hand them over.
func TestOpenPostgresOnAnotherRolesTables(t *testing.T) {
	dsn := pgtest.Database(t)
	s, err := OpenPostgres(t.Context(), dsn) // as postgres: its tables
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	_, roleDSN, _ := newRole(t, dsn, "not_owner", "GRANT CREATE ON SCHEMA public TO %s")
	_, err = OpenPostgres(t.Context(), roleDSN)
	if err == nil || !strings.Contains(err.Error(), "must be owner of") || !strings.Contains(err.Error(), "REASSIGN OWNED BY old_role TO role") {
		t.Fatalf("OpenPostgres as a role that owns no table: %v; want the ownership error with how to hand the tables over", err)
	}
}

// Every store session ends a transaction left idle (a replica cut off
// between its statements) after pgIdleInTransaction, unless the DSN sets
// the timeout itself, as a parameter or in libpq's options; the group's
// session waits pgGroupLockTimeout for a row. Both are SET once
// connected, never sent as startup parameters, which PgBouncer refuses:
// the store's sessions send none but the DSN's and application_name.
func TestSessionSettings(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	for extra, want := range map[string]string{
		"": "2s",
		" idle_in_transaction_session_timeout=60000":          "1min",
		" options='-c idle_in_transaction_session_timeout=0'": "0",
	} {
		store, err := pgConfig(dsn + extra)
		if err != nil {
			t.Fatal(err)
		}
		dsnParams, err := pgx.ParseConfig(dsn + extra)
		if err != nil {
			t.Fatal(err)
		}
		group := groupConnConfig(store, newOptions(nil))
		for name, cfg := range map[string]*pgx.ConnConfig{"store": store, "group": group} {
			for k := range cfg.RuntimeParams {
				if _, given := dsnParams.RuntimeParams[k]; !given && k != "application_name" {
					t.Errorf("%s%s: the %s's sessions send startup parameter %s, which PgBouncer refuses", dsn, extra, name, k)
				}
			}
			c, err := pgx.ConnectConfig(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			var idle, lock string
			err = c.QueryRow(t.Context(), "SELECT current_setting('idle_in_transaction_session_timeout'), current_setting('lock_timeout')").Scan(&idle, &lock)
			_ = c.Close(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			wantLock := "0"
			if name == "group" {
				wantLock = "250ms"
			}
			if idle != want || lock != wantLock {
				t.Errorf("%s%s: the %s's session has idle_in_transaction_session_timeout %s and lock_timeout %s; want %s and %s", dsn, extra, name, idle, lock, want, wantLock)
			}
		}
	}
}

// A start against a PostgreSQL that does not answer (a partition, a
// stalled server) or that waits for a lock another session holds fails
// once its deadline passes (switchyard's is 30 s) with what it waited
// for: the driver's own error says only "timeout".
func TestPostgresStartStalled(t *testing.T) {
	t.Parallel()
	holdIn := func(t *testing.T, dsn, stmt string) {
		t.Helper()
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		tx, err := db.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback() })
		if _, err := tx.ExecContext(t.Context(), stmt); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, want string
		setup      func(t *testing.T) string // the DSN to start on
	}{
		{"partitioned", "while connecting: check that it is reachable", func(t *testing.T) string {
			px := pgtest.NewProxy(t, pgtest.Database(t), "")
			px.Freeze(true)
			return px.DSN()
		}},
		{"migration lock held", "another replica's migration", func(t *testing.T) string {
			dsn := pgtest.Database(t)
			holdIn(t, dsn, fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLockID))
			return dsn
		}},
		{"teams table locked", "a lock another session holds on the teams table", func(t *testing.T) string {
			dsn := pgtest.Database(t)
			s, err := OpenPostgres(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			_ = s.Close()
			holdIn(t, dsn, "LOCK TABLE teams IN ACCESS EXCLUSIVE MODE")
			return dsn
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dsn := tc.setup(t)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			s, err := OpenPostgres(ctx, dsn)
			if err == nil {
				_ = s.Close()
				t.Fatal("OpenPostgres succeeded")
			}
			if !strings.Contains(err.Error(), "did not answer within the start's deadline") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenPostgres: %v; want it to say what it waited for (%q)", err, tc.want)
			}
		})
	}
}
