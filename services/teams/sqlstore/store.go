// Package sqlstore keeps the team directory in a SQL database: SQLite (the
// embedded default, a file in a data directory) or PostgreSQL (shared by
// several replicas). Both run the same queries through database/sql; what
// differs between them is in a dialect.
//
// Rows are keyed by teams.CityKey computed in Go, so both databases match
// cities exactly as the in-memory store does, and order them by the key's
// bytes (SQLite's BINARY collation, PostgreSQL's "C" collation), which is
// the order ListTeams' page tokens rely on.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	sqlitelib "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/switchyard/switchyard/internal/waits"
	"github.com/switchyard/switchyard/services/teams"
)

// Store is a teams.Store in a SQL database.
type Store struct {
	read    *sql.DB // queries; may be the same pool as write
	write   *sql.DB // changes and migrations
	dialect dialect
	// get, put and del are the statements of Get, Put and Delete,
	// prepared once: parsing the SQL on every call cost more than running
	// it (a PutTeam's parse, its triggers' included, was a third of its
	// CPU time, fsync aside).
	get, put, del *sql.Stmt
	// group, when set, commits the Puts that arrive together in one
	// transaction (group.go); SQLite sets it.
	group *groupCommit
	// file, on SQLite, refuses every call once the path names another
	// file than the one opened (filegone.go); nil on PostgreSQL.
	file *dbFile
	// vfs is the SQLite VFS the store's connections use: internal/sqlitevfs's
	// where it registers (Linux), else "" for SQLite's default.
	vfs string
	// feed reports changes (feed.go); stopFeed ends its source.
	feed     *teams.Feed
	stopFeed func()
	// reads, on SQLite, grows the read pool while reads wait for a
	// connection (readlimit.go); stopReads ends its looks.
	reads     *readLimit
	stopReads func()
	// migrated tells whether the open migrated the database, from
	// schema migratedFrom (MigratedFrom).
	migrated     bool
	migratedFrom int
	// timeout bounds each read and write of a database across the
	// network (pgTimeout, boundContext); 0 on SQLite.
	timeout time.Duration
}

// prepare readies s's prepared statements and its (down) feed; on failure
// it closes s.
func prepare(ctx context.Context, s *Store) (*Store, error) {
	s.feed = teams.NewEchoFeed(false)
	s.feed.SetConfirming() // every poll, every heartbeat
	for _, st := range []struct {
		stmt **sql.Stmt
		db   *sql.DB
		sql  string
	}{
		{&s.get, s.read, `SELECT city, nickname FROM teams WHERE city_key = ?`},
		{&s.put, s.write, putSQL},
		{&s.del, s.write, `DELETE FROM teams WHERE city_key = ? RETURNING city, nickname`},
	} {
		var err error
		if *st.stmt, err = st.db.PrepareContext(ctx, s.dialect.q(st.sql)); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

// putSQL creates or updates a team's row in one statement, so a write is
// atomic without a transaction; rev starts at 1 on insert and grows on
// every update, which tells the two apart.
const putSQL = `INSERT INTO teams (city_key, city, nickname, rev) VALUES (?, ?, ?, 1)
	ON CONFLICT (city_key) DO UPDATE SET nickname = excluded.nickname, rev = teams.rev + 1
	RETURNING city, nickname, rev`

var _ teams.Store = (*Store)(nil)

// dialect is what differs between the databases.
type dialect struct {
	name string
	// numbered placeholders ($1, $2) instead of "?".
	numbered bool
	// lockMigrations serializes migrations between processes; it runs first
	// in the migration transaction.
	lockMigrations string
	// ddl picks a migration's statements for this database.
	ddl func(m migration) []string
	// columnCount counts the columns named by its two arguments (table,
	// column): 1 when the column exists.
	columnCount string
	// remote: every statement is a round trip across the network, a read
	// as much as a write (waits.Begin).
	remote bool
}

// q rewrites a query written with "?" placeholders for the dialect.
func (d dialect) q(query string) string {
	if !d.numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// readWaits tells the server of ctx's call that a read is about to wait,
// where it crosses the network (waits.Begin); on SQLite it does not.
func (s *Store) readWaits(ctx context.Context) {
	if s.dialect.remote {
		waits.Begin(ctx)
	}
}

// Get implements teams.Store.
func (s *Store) Get(ctx context.Context, city string) (teams.Team, error) {
	if err := s.file.err(); err != nil {
		return teams.Team{}, err
	}
	s.readWaits(ctx)
	rctx, cancel := s.boundContext(ctx)
	defer cancel()
	var t teams.Team
	err := s.get.QueryRowContext(rctx, teams.CityKey(city)).Scan(&t.City, &t.Nickname)
	if errors.Is(err, sql.ErrNoRows) {
		return teams.Team{}, teams.ErrNotFound
	}
	return t, s.readErr(ctx, rctx, err)
}

// boundContext bounds a read or a write of a database across the network
// by s.timeout, unless ctx ends sooner. A call without a deadline
// (grpcurl's and many SDK calls have none) would otherwise wait for as
// long as the kernel keeps retransmitting to a database it is cut off
// from, about 15 minutes, while its replica stays ready; a write would
// also hold up every write queued behind it.
func (s *Store) boundContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return bound(ctx, s.timeout)
}

// bound is boundContext with timeout d (none when d is 0).
func bound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// boundOut reports whether the call made under bctx (bound of ctx) failed
// because its bound passed, its caller still waiting.
func boundOut(ctx, bctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && bctx.Err() != nil
}

// readErr is ctxErr for a read made under rctx (boundContext of ctx): a
// read that outlived s.timeout, its caller still waiting, found the
// database unavailable.
func (s *Store) readErr(ctx, rctx context.Context, err error) error {
	if boundOut(ctx, rctx, err) {
		return fmt.Errorf("%w: the database answered no read within %v", teams.ErrUnavailable, s.timeout)
	}
	return ctxErr(ctx, err)
}

// writeErr is ctxErr for a write made under wctx (boundContext of ctx): a
// write that outlived s.timeout, its caller still waiting, found the
// database unavailable, and may have been made all the same: its
// statement, or its group's COMMIT, may have reached the database, which
// goes on with it (one waiting for a lock makes the write once the lock
// is released; closing the connection does not stop it).
func (s *Store) writeErr(ctx, wctx context.Context, err error) error {
	if boundOut(ctx, wctx, err) {
		if errors.Is(err, errNotTaken) {
			return fmt.Errorf("%w: the database answered no write within %v; this one waited behind them and was not made", teams.ErrUnavailable, s.timeout)
		}
		return fmt.Errorf("%w: %w: the database answered no write within %v", teams.ErrUnavailable, teams.ErrMaybeMade, s.timeout)
	}
	err = ctxErr(ctx, err)
	// Only a write's: its answer says the write was not made. A read
	// out of space (a sort spilling to a full temp file) is no write.
	if !full(err) || errors.Is(err, teams.ErrStorageFull) || ctx.Err() != nil {
		return err
	}
	if s.file != nil && len(s.file.files) > 0 {
		return fmt.Errorf("%w: %w: free space on the file system of %s", teams.ErrStorageFull, err, filepath.Dir(s.file.files[0].path))
	}
	return fmt.Errorf("%w: %w", teams.ErrStorageFull, err)
}

// List implements teams.Store.
func (s *Store) List(ctx context.Context, opts teams.ListOptions) ([]teams.Team, bool, error) {
	if err := s.file.err(); err != nil {
		return nil, false, err
	}
	query, args := listQuery(opts)
	s.readWaits(ctx)
	rctx, cancel := s.boundContext(ctx)
	defer cancel()
	rows, err := s.read.QueryContext(rctx, s.dialect.q(query), args...)
	if err != nil {
		return nil, false, s.readErr(ctx, rctx, err)
	}
	defer func() { _ = rows.Close() }()
	var out []teams.Team
	for rows.Next() {
		var t teams.Team
		if err := rows.Scan(&t.City, &t.Nickname); err != nil {
			return nil, false, s.readErr(ctx, rctx, err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, false, s.readErr(ctx, rctx, err)
	}
	more := opts.Limit > 0 && len(out) > opts.Limit
	if more {
		out = out[:opts.Limit]
	}
	return out, more, nil
}

// listQuery is List's query of opts, and its arguments. A prefix bounds
// city_key on both sides too, so that the database searches the key's
// index between the bounds instead of filtering every key after the page.
func listQuery(opts teams.ListOptions) (string, []any) {
	prefix := teams.PrefixKey(opts.Prefix)
	// substr/length count characters in both databases.
	query := `SELECT city, nickname FROM teams
		WHERE substr(city_key, 1, length(CAST(? AS TEXT))) = CAST(? AS TEXT)`
	args := []any{prefix, prefix}
	if prefix > opts.After {
		query += ` AND city_key >= ?`
		args = append(args, prefix)
	} else {
		query += ` AND city_key > ?`
		args = append(args, opts.After)
	}
	if end := prefixEnd(prefix); end != "" {
		query += ` AND city_key < ?`
		args = append(args, end)
	}
	query += ` ORDER BY city_key`
	if opts.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, opts.Limit+1) // one more tells whether more follow
	}
	return query, args
}

// prefixEnd is the least string above every string that starts with
// prefix in byte order, which orders keys in both databases (SQLite's
// BINARY, PostgreSQL's "C" collation) and is code point order in UTF-8:
// prefix with its last character made the next one (past the
// surrogates), dropping any U+10FFFF that has none. "" when nothing is
// above: no prefix, one of U+10FFFF alone, or one not UTF-8 (which no key
// starts with).
func prefixEnd(prefix string) string {
	if !utf8.ValidString(prefix) {
		return ""
	}
	for prefix != "" {
		r, size := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-size]
		switch {
		case r == 0xD7FF:
			return prefix + "\uE000"
		case r < utf8.MaxRune:
			return prefix + string(r+1)
		}
	}
	return ""
}

// Put implements teams.Store, with one statement (see prepare); on SQLite,
// writes that arrive together share one commit (group.go).
func (s *Store) Put(ctx context.Context, t teams.Team) (teams.Team, bool, error) {
	t = teams.Team{City: strings.TrimSpace(t.City), Nickname: strings.TrimSpace(t.Nickname)}
	if err := t.Validate(); err != nil {
		return teams.Team{}, false, err
	}
	if err := s.file.err(); err != nil {
		return teams.Team{}, false, err
	}
	put := s.upsert
	if s.group != nil {
		put = s.group.put
	}
	waits.Begin(ctx) // for its commit's fsync, or the network
	wctx, cancel := s.boundContext(ctx)
	defer cancel()
	// On PostgreSQL the group's transaction lasts while a caller waits
	// (together): bounded, so is it; its COMMIT has its own bound.
	stored, rev, err := put(wctx, teams.CityKey(t.City), t.City, t.Nickname)
	if err != nil {
		return teams.Team{}, false, s.writeErr(ctx, wctx, err)
	}
	if err := s.file.checkCommitted(); err != nil {
		return teams.Team{}, false, err
	}
	s.feed.ReportLocal(teams.Wrote(teams.CityKey(stored.City), stored, true))
	return stored, rev == 1, nil
}

// upsert runs the Put statement (prepare) on its own, under ctx, and
// reads the row it produced; rev 1 means it created the row.
func (s *Store) upsert(ctx context.Context, key, city, nickname string) (t teams.Team, rev int64, err error) {
	return scanUpsert(returning(ctx, s.put, key, city, nickname))
}

// returning runs a write whose RETURNING clause gives at most one row, on
// its own, and reads that row to the statement's end. QueryRow would
// reset the statement after the row instead: SQLite then commits the
// write all the same, but runs the automatic checkpoint only at the step
// that ends a statement, so a process whose writes were all of this kind
// never checkpointed, and its teams.db-wal grew by every write.
func returning(ctx context.Context, stmt *sql.Stmt, args ...any) rowResult {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return rowResult{err: err}
	}
	return rowResult{rows: rows}
}

// rowResult is the one row of returning, scanned as sql.Row is: no row is
// sql.ErrNoRows, and the statement's end (its commit) is part of the
// answer.
type rowResult struct {
	rows *sql.Rows
	err  error
}

func (r rowResult) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer func() { _ = r.rows.Close() }()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	for r.rows.Next() { // to the statement's end
	}
	if err := r.rows.Err(); err != nil {
		return err
	}
	return r.rows.Close()
}

// scanUpsert reads the row putSQL returns, from database/sql or (a group
// on PostgreSQL, pgGroup) from pgx.
func scanUpsert(row interface{ Scan(dest ...any) error }) (t teams.Team, rev int64, err error) {
	err = row.Scan(&t.City, &t.Nickname, &rev)
	return t, rev, err
}

// Delete implements teams.Store.
func (s *Store) Delete(ctx context.Context, city string) (teams.Team, error) {
	if err := s.file.err(); err != nil {
		return teams.Team{}, err
	}
	waits.Begin(ctx) // for its commit's fsync, or the network
	wctx, cancel := s.boundContext(ctx)
	defer cancel()
	var t teams.Team
	err := returning(wctx, s.del, teams.CityKey(city)).Scan(&t.City, &t.Nickname)
	if errors.Is(err, sql.ErrNoRows) {
		if err := s.file.check(); err != nil {
			return teams.Team{}, err // "not found" in a file no start opens
		}
		return teams.Team{}, teams.ErrNotFound
	}
	if err == nil {
		if err := s.file.checkCommitted(); err != nil {
			return teams.Team{}, err
		}
	}
	if err != nil {
		return teams.Team{}, s.writeErr(ctx, wctx, err)
	}
	s.feed.ReportLocal(teams.Wrote(teams.CityKey(t.City), teams.Team{}, false))
	return t, nil
}

// Close implements teams.Store; it also ends the change feed.
func (s *Store) Close() error {
	if s.stopFeed != nil {
		s.stopFeed()
	}
	if s.stopReads != nil {
		s.stopReads()
	}
	if s.feed != nil {
		s.feed.Close()
	}
	if s.group != nil {
		s.group.close()
	}
	var err error
	for _, st := range []*sql.Stmt{s.get, s.put, s.del} {
		if st != nil {
			err = errors.Join(err, st.Close())
		}
	}
	err = errors.Join(err, s.write.Close())
	if s.read != s.write {
		err = errors.Join(err, s.read.Close())
	}
	return err
}

// ctxErr makes a failure caused by the call's context recognizable as
// such: drivers report an interrupted query in their own words (SQLite's
// "interrupted"), which would otherwise be an internal error. A failure
// a retry may get past (transient) wraps teams.ErrUnavailable.
func ctxErr(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		if errors.Is(err, ctx.Err()) {
			return err
		}
		return fmt.Errorf("%w: %v", ctx.Err(), err)
	case transient(err) && !errors.Is(err, teams.ErrUnavailable):
		return fmt.Errorf("%w: %w", teams.ErrUnavailable, err)
	}
	return err
}

// full reports whether err says the database's storage has no room for
// a write: SQLITE_FULL (the file system of teams.db and its -wal), or
// PostgreSQL's disk_full (53100). SQLite rolls the write back; so does
// PostgreSQL.
func full(err error) bool {
	var lite *sqlitelib.Error
	if errors.As(err, &lite) {
		return lite.Code()&0xff == sqlite3.SQLITE_FULL
	}
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "53100"
}

// transient reports whether err says the database is busy, cannot be
// reached or is going away, rather than that the statement failed.
func transient(err error) bool {
	if errors.Is(err, teams.ErrUnavailable) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	// No host of the DSN is one its target_session_attrs accepts: a
	// failover under way (the old primary fenced read-only or a standby
	// again, the new one not yet promoted).
	if errors.Is(err, pgconn.ErrReadOnlyConnection) || errors.Is(err, pgconn.ErrStandbyConnection) {
		return true
	}
	var lite *sqlitelib.Error
	if errors.As(err, &lite) {
		code := lite.Code() & 0xff // the primary code of an extended one
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		// Class 08 (connection exception), the server shutting down or
		// starting (57P01-57P03), too many connections (53300); and what
		// a DBA's settings or maintenance cause, which another replica,
		// or this one a moment later, may get past: writes refused as
		// read-only (25006: a hot standby, default_transaction_read_only;
		// pgConfig closes such a session), a statement_timeout or an
		// operator's cancel (57014; the call's own deadline is seen
		// before, in ctxErr), a lock_timeout (55P03), a login refused
		// (class 28: a password being rotated, a role set NOLOGIN) and
		// the database gone (3D000). The log line says which.
		switch pg.Code {
		case "57P01", "57P02", "57P03", "53300", "25006", "57014", "55P03", "3D000":
			return true
		}
		return strings.HasPrefix(pg.Code, "08") || strings.HasPrefix(pg.Code, "28")
	}
	// The connection failed or broke: a dial refused, a socket reset, a
	// server gone in the middle of a reply.
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err)
}

// MigratedFrom reports whether opening s migrated its database, and the
// schema version it found (0: none, a database it created).
func (s *Store) MigratedFrom() (from int, migrated bool) {
	return s.migratedFrom, s.migrated
}

// SchemaVersion is the newest migration applied to the database. It is
// above LatestVersion when a newer switchyard migrated the database and
// this one serves it during a rolling upgrade.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.read.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	return int(v.Int64), err
}
