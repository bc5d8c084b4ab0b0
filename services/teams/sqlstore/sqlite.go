package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	sqlitelib "modernc.org/sqlite" // database/sql driver "sqlite", pure Go
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/switchyard/switchyard/internal/sqlitevfs"
)

// SQLiteFile is the database's file name inside the data directory.
const SQLiteFile = "teams.db"

// BusyTimeout is how long a SQLite write waits for another connection or
// process holding the write lock before it fails.
const BusyTimeout = 10 * time.Second

var sqlite = dialect{
	name:        "sqlite",
	ddl:         func(m migration) []string { return m.sqlite },
	columnCount: `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`,
}

// OpenSQLite opens (creating it if needed) the team directory in
// dir/teams.db, migrates it and seeds a new one with the tutorial's teams.
//
// The file is in WAL mode, so readers never wait for the writer, and every
// connection waits up to BusyTimeout for the write lock, so several
// processes can share one directory. synchronous=FULL makes a write durable
// once it returns, even if the machine loses power afterwards. On Linux the
// connections use internal/sqlitevfs's VFS, whose fsyncs park the
// committing goroutine instead of stalling the Go scheduler's P.
//
// Its change feed polls the file every WithFeedInterval (feed_sqlite.go).
// Reads share a pool of connections that grows while reads wait for one
// (readlimit.go).
func OpenSQLite(ctx context.Context, dir string, opts ...Option) (*Store, error) {
	if dir == "" {
		return nil, errors.New("sqlite: no data directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: data directory %s cannot be created: %w", dir, err)
	}
	if err := checkWritable(dir); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	path := filepath.Join(dir, SQLiteFile)
	// SQLite reports a directory where its files go as "unable to open
	// database file" or "disk I/O error", naming neither.
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(f); err == nil && !fi.Mode().IsRegular() {
			what := "not a regular file"
			if fi.IsDir() {
				what = "a directory"
			}
			return nil, fmt.Errorf("sqlite: %s is %s, where SQLite keeps a file: move it away, or choose another data directory", f, what)
		}
	}
	vfs, err := sqlitevfs.Register()
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	dsn := func(extra url.Values) string {
		q := url.Values{
			"_busy_timeout": {fmt.Sprint(BusyTimeout.Milliseconds())},
			"_journal_mode": {"WAL"},
			"_synchronous":  {"FULL"},
		}
		if vfs != "" {
			q["vfs"] = []string{vfs}
		}
		for k, v := range extra {
			q[k] = v
		}
		return (&url.URL{Scheme: "file", Opaque: uriPath(path), RawQuery: q.Encode()}).String()
	}
	// One writer connection: writes of this process queue in Go instead of
	// polling SQLite's lock; BEGIN IMMEDIATE takes the write lock at the
	// start of a transaction, so a transaction never fails upgrading it.
	write, err := sql.Open("sqlite", dsn(url.Values{"_txlock": {"immediate"}}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	from, migrated, err := migrateSQLite(ctx, write)
	if err != nil {
		_ = write.Close()
		// SQLite says "file is not a database (26)", naming no file.
		var se *sqlitelib.Error
		if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_NOTADB {
			return nil, fmt.Errorf("sqlite: %s is not a SQLite database: move it away, or choose another data directory", path)
		}
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	o := newOptions(opts)
	file := openedFiles(o.logger, path, path+"-wal", path+"-shm") // the writer holds all three open
	read, err := sql.Open("sqlite", dsn(url.Values{"_query_only": {"1"}}))
	if err != nil {
		_ = write.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	st, err := prepare(ctx, &Store{read: read, write: write, dialect: sqlite, vfs: vfs, file: file, reads: newReadLimit(read, o.logger), migrated: migrated, migratedFrom: from})
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	st.group = newGroupCommit(st)
	file.feed = st.feed
	if o.readLookEvery > 0 {
		st.stopReads = goUntilStopped(func(stop <-chan struct{}) { st.reads.run(stop, o.readLookEvery) })
	}
	// The feed's own connection: data_version is per connection.
	poll, err := sql.Open("sqlite", dsn(url.Values{"_query_only": {"1"}}))
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	poll.SetMaxOpenConns(1)
	f := &sqliteFeed{db: poll, file: file, interval: o.feedInterval, log: newFeedLog(o.logger, st.feed, "sqlite data_version")}
	st.startFeed(f.run)
	return st, nil
}

// uriPath is path as the path of a SQLite URI filename, which SQLite
// percent-decodes and ends at a '?' or '#': those three are escaped, so
// that a data directory "/srv/q?x" keeps its teams.db, not a file
// /srv/q.
func uriPath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.ToSlash(path))
}

// DefaultDataDir is the per-user data directory: $XDG_DATA_HOME/switchyard,
// else ~/.local/share/switchyard (~/Library/Application Support/switchyard
// on macOS, %LocalAppData%\switchyard on Windows). Never the working
// directory, so where the server is started from does not change its data.
func DefaultDataDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "switchyard"), nil
	}
	switch runtime.GOOS {
	case "windows":
		if d := os.Getenv("LocalAppData"); d != "" {
			return filepath.Join(d, "switchyard"), nil
		}
	case "darwin":
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, "Library", "Application Support", "switchyard"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no per-user data directory (%w): pass -data-dir", err)
	}
	return filepath.Join(home, ".local", "share", "switchyard"), nil
}

// migrateSQLite runs migrate, starting again while SQLite reports the
// database busy. Processes that create the same new file at once can get
// SQLITE_BUSY at once, without the busy timeout, while another one switches
// the file to WAL; the migration is one transaction, so a retry is safe.
func migrateSQLite(ctx context.Context, db *sql.DB) (from int, migrated bool, err error) {
	deadline := time.Now().Add(BusyTimeout)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		from, migrated, err = migrate(ctx, db, sqlite)
		var se *sqlitelib.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return from, migrated, err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return from, migrated, err
		}
	}
}
