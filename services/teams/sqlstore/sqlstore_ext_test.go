package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
	"github.com/switchyard/switchyard/services/teams/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

func openSQLite(t *testing.T, dir string, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.OpenSQLite(t.Context(), dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openPostgres(t *testing.T, dsn string, opts ...sqlstore.Option) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.OpenPostgres(t.Context(), dsn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A directory where SQLite keeps one of its files is named, with what to
// do, where SQLite says "unable to open database file" or "disk I/O error".
func TestSQLiteFileIsADirectory(t *testing.T) {
	t.Parallel()
	for _, name := range []string{sqlstore.SQLiteFile, sqlstore.SQLiteFile + "-wal", sqlstore.SQLiteFile + "-shm"} {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		s, err := sqlstore.OpenSQLite(t.Context(), dir)
		if err == nil {
			s.Close()
		}
		if want := filepath.Join(dir, name) + " is a directory, where SQLite keeps a file"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s a directory: %v, want an error containing %q", name, err, want)
		}
	}
}

// A teams.db that is no SQLite database (another program's file, or one
// torn by a copy) is named, with what to do, where SQLite says only "file
// is not a database (26)", and is left as it was.
func TestSQLiteFileIsNotADatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, sqlstore.SQLiteFile)
	const content = "name,nickname\nChicago,Jackals\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.OpenSQLite(t.Context(), dir)
	if err == nil {
		s.Close()
	}
	if want := path + " is not a SQLite database: move it away, or choose another data directory"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("open: %v, want an error containing %q", err, want)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != content {
		t.Errorf("the file holds %q (%v) after the open; want it unchanged", got, err)
	}
}

func TestSQLiteSuite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) teams.Store { return openSQLite(t, t.TempDir()) })
}

func TestPostgresSuite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) teams.Store { return openPostgres(t, pgtest.Database(t)) })
}

// A DSN that turns pgx's statement cache off, or both its caches (as
// PgBouncer's transaction pooling needs), gets a store that works.
func TestPostgresSuiteWithoutStatementCache(t *testing.T) {
	t.Parallel()
	for _, params := range []string{" statement_cache_capacity=0", " statement_cache_capacity=0 description_cache_capacity=0"} {
		t.Run(strings.TrimSpace(params), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) teams.Store { return openPostgres(t, pgtest.Database(t)+params) })
		})
	}
}

// reopen checks what a restart must keep: writes, deletes of seed teams
// (seeding happens once, at creation), and the schema version.
func reopen(t *testing.T, open func() *sqlstore.Store) {
	ctx := t.Context()
	s := open()
	if _, _, err := s.Put(ctx, teams.Team{City: "Miami", Nickname: "Sharks"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "Boston"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(ctx, teams.Team{City: "Chicago", Nickname: "Bears"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	defer func() { _ = s.Close() }()
	if got, err := s.Get(ctx, "miami"); err != nil || got.Nickname != "Sharks" {
		t.Errorf("after reopening, Get(miami) = %v, %v", got, err)
	}
	if got, err := s.Get(ctx, "chicago"); err != nil || got.Nickname != "Bears" {
		t.Errorf("after reopening, Get(chicago) = %v, %v; a seed team was re-seeded over a change", got, err)
	}
	if _, err := s.Get(ctx, "Boston"); !errors.Is(err, teams.ErrNotFound) {
		t.Errorf("after reopening, Get(Boston) = %v; a deleted seed team came back", err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != sqlstore.LatestVersion() {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, sqlstore.LatestVersion())
	}
}

func TestSQLiteReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	reopen(t, func() *sqlstore.Store { return openSQLite(t, dir) })
}

func TestPostgresReopen(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	reopen(t, func() *sqlstore.Store { return openPostgres(t, dsn) })
}

// Several stores (as several processes or replicas would) opening one new
// database at once migrate it once and then share it.
func sharedDatabase(t *testing.T, open func() (*sqlstore.Store, error)) {
	const n = 4
	stores := make([]*sqlstore.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = open() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		defer func() { _ = stores[i].Close() }()
	}
	ctx := t.Context()
	for i, s := range stores {
		if _, _, err := s.Put(ctx, teams.Team{City: "Shared " + string(rune('A'+i)), Nickname: "N"}); err != nil {
			t.Errorf("store %d Put: %v", i, err)
		}
	}
	for i, s := range stores {
		all, _, err := s.List(ctx, teams.ListOptions{})
		if err != nil || len(all) != len(teams.TutorialTeams)+n {
			t.Errorf("store %d sees %d teams (%v), want %d", i, len(all), err, len(teams.TutorialTeams)+n)
		}
	}
}

func TestSQLiteSharedDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sharedDatabase(t, func() (*sqlstore.Store, error) { return sqlstore.OpenSQLite(t.Context(), dir) })
}

func TestPostgresSharedDatabase(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	sharedDatabase(t, func() (*sqlstore.Store, error) { return sqlstore.OpenPostgres(t.Context(), dsn) })
}

func TestSQLiteFileIsWAL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSQLite(t, dir)
	if _, _, err := s.Put(t.Context(), teams.Team{City: "Miami", Nickname: "Sharks"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, sqlstore.SQLiteFile+"-wal")); err != nil {
		t.Errorf("no write-ahead log beside the database while it is open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 20)
	f, err := os.Open(filepath.Join(dir, sqlstore.SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Read(head); err != nil {
		t.Fatal(err)
	}
	// Bytes 18 and 19 of the header are 2 in a WAL database.
	if string(head[:15]) != "SQLite format 3" || head[18] != 2 || head[19] != 2 {
		t.Errorf("database header %q: not a SQLite database in WAL mode", head)
	}
}

func TestSQLiteBadDirectory(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(file, "sub")); err == nil {
		_ = s.Close()
		t.Error("OpenSQLite under a regular file succeeded")
	}
	if s, err := sqlstore.OpenSQLite(context.Background(), ""); err == nil {
		_ = s.Close()
		t.Error(`OpenSQLite("") succeeded`)
	}
}

func TestPostgresBadDSN(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5e9)
	defer cancel()
	if s, err := sqlstore.OpenPostgres(ctx, "host=/nonexistent-switchyard port=1 user=x password=hunter2 connect_timeout=2"); err == nil {
		_ = s.Close()
		t.Error("OpenPostgres of a server that is not there succeeded")
	}
	if _, err := sqlstore.OpenPostgres(ctx, "postgres://x:hunter2@%zz"); err == nil {
		t.Error("OpenPostgres of a malformed DSN succeeded")
	} else if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error shows the password: %v", err)
	}
}

func TestDefaultDataDir(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/srv/data")
	if d, err := sqlstore.DefaultDataDir(); err != nil || d != "/srv/data/switchyard" {
		t.Errorf("with XDG_DATA_HOME: %q, %v", d, err)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/ada")
	d, err := sqlstore.DefaultDataDir()
	wd, _ := os.Getwd()
	if err != nil || !filepath.IsAbs(d) || strings.HasPrefix(d, wd) || filepath.Base(d) != "switchyard" {
		t.Errorf("DefaultDataDir() = %q, %v; want an absolute per-user directory", d, err)
	}
}

// A write that waits for another process's write lock gives up when its
// context does, with the context's error.
func TestSQLiteWriteWaitsForLockUntilDeadline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, other := openSQLite(t, dir), openSQLite(t, dir)
	t.Cleanup(func() { _ = s.Close(); _ = other.Close() })
	unlock, err := other.LockForTest(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = s.Put(ctx, teams.Team{City: "Miami", Nickname: "Sharks"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Put while locked = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Put gave up after %v, its deadline was 200ms", d)
	}
	// Reads do not wait for the writer (WAL).
	if got, err := s.Get(t.Context(), "Chicago"); err != nil || got.Nickname != "Jackals" {
		t.Errorf("Get while another writer holds the lock = %v, %v", got, err)
	}
	unlock()
	if _, _, err := s.Put(t.Context(), teams.Team{City: "Miami", Nickname: "Sharks"}); err != nil {
		t.Errorf("Put after the lock is released: %v", err)
	}
}

// A database a newer switchyard migrated is served when the newer one
// recorded that this schema is still compatible (a rolling upgrade), and
// refused, unmodified, when it did not or recorded a higher minimum.
func newerSchema(t *testing.T, driver, dsn string, open func() (*sqlstore.Store, error)) {
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	latest := sqlstore.LatestVersion()
	q := func(query string) string {
		if driver == "pgx" {
			return strings.NewReplacer("?1", "$1", "?2", "$2").Replace(query)
		}
		return query
	}
	setNewer := func(minCompatible any) {
		t.Helper()
		if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version > ` + fmt.Sprint(latest)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(q(`INSERT INTO schema_migrations (version, name, applied_at, min_compatible) VALUES (?1, 'from the future', '', ?2)`),
			latest+1, minCompatible); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name          string
		minCompatible any
		serves        bool
	}{
		{"no minimum recorded", nil, false},
		{"minimum above this build", latest + 1, false},
		{"minimum is this build", latest, true},
		{"minimum below this build", 1, true},
	} {
		setNewer(tc.minCompatible)
		s, err := open()
		if !tc.serves {
			if err == nil {
				_ = s.Close()
				t.Errorf("%s: a database at schema %d was opened", tc.name, latest+1)
			} else if !strings.Contains(err.Error(), "run a newer switchyard") {
				t.Errorf("%s: error %q does not say what to do", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if v, err := s.SchemaVersion(t.Context()); err != nil || v != latest+1 {
			t.Errorf("%s: SchemaVersion = %d, %v; want %d (nothing migrated back)", tc.name, v, err, latest+1)
		}
		if _, _, err := s.Put(t.Context(), teams.Team{City: "Miami", Nickname: tc.name}); err != nil {
			t.Errorf("%s: Put on a newer compatible schema: %v", tc.name, err)
		}
		_ = s.Close()
	}
}

func TestSQLiteNewerSchema(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	newerSchema(t, "sqlite", filepath.Join(dir, sqlstore.SQLiteFile), func() (*sqlstore.Store, error) {
		return sqlstore.OpenSQLite(t.Context(), dir)
	})
}

func TestPostgresNewerSchema(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	newerSchema(t, "pgx", dsn, func() (*sqlstore.Store, error) { return sqlstore.OpenPostgres(t.Context(), dsn) })
}

// A database created before minimum compatible versions were recorded (its
// schema_migrations has no min_compatible column) is upgraded in place.
func TestSQLiteSchemaMigrationsWithoutMinimum(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlstore.SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`,
		`CREATE TABLE teams (city_key TEXT PRIMARY KEY, city TEXT NOT NULL, nickname TEXT NOT NULL, rev INTEGER NOT NULL) WITHOUT ROWID`,
		`INSERT INTO teams VALUES ('old town', 'Old Town', 'Elders', 1)`,
		`INSERT INTO schema_migrations VALUES (1, 'create teams', ''), (2, 'seed the tutorial teams', '')`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	_ = db.Close()
	s := openSQLite(t, dir)
	defer func() { _ = s.Close() }()
	if got, err := s.Get(t.Context(), "old town"); err != nil || got.Nickname != "Elders" {
		t.Errorf("Get(old town) = %v, %v", got, err)
	}
	if v, err := s.SchemaVersion(t.Context()); err != nil || v != sqlstore.LatestVersion() {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, sqlstore.LatestVersion())
	}
}
