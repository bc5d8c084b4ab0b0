package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/switchyard/switchyard/services/teams"
)

// migrationLockID names the advisory lock that serializes migrations of
// replicas starting at once ("switchyard teams" in ASCII, truncated).
const migrationLockID int64 = 0x7377697463687961

var postgres = dialect{
	name:           "postgres",
	numbered:       true,
	remote:         true,
	lockMigrations: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLockID),
	ddl:            func(m migration) []string { return m.postgres },
	columnCount: `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?`,
}

// OpenPostgres connects to the PostgreSQL database of dsn (a libpq
// connection string or URL), migrates it and seeds a new one with the
// tutorial's teams. Several replicas may share the database.
//
// Its change feed keeps one more connection, listening (feed_postgres.go),
// and its writes one more, committing them in groups (pgGroup).
func OpenPostgres(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg, err := pgConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w; see https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING", err)
	}
	// A session begun before the feed's listener left a server turned
	// read-only (an old primary fenced after a failover, still up) may be
	// on that server: it refuses writes, which closes the session
	// (pgConfig), but a session that only reads would go on answering
	// with the old server's teams, which the cache would keep. Each
	// session notes the count of such departures it began under, and is
	// not used again once it has grown: the next one connects to the
	// server the DSN finds then (target_session_attrs).
	var serversLeft atomic.Uint64
	const leftKey = "switchyard servers left"
	db := stdlib.OpenDB(*cfg,
		stdlib.OptionAfterConnect(func(_ context.Context, c *pgx.Conn) error {
			c.PgConn().CustomData()[leftKey] = serversLeft.Load()
			return nil
		}),
		stdlib.OptionResetSession(func(_ context.Context, c *pgx.Conn) error {
			if c.PgConn().CustomData()[leftKey] != serversLeft.Load() {
				return driver.ErrBadConn
			}
			return nil
		}))
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres: %w%s", err, startHint(ctx, "connecting: check that it is reachable from here (a firewall, a network partition)"))
	}
	if err := checkPGVersion(ctx, db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("%w%s", err, startHint(ctx, "reading its version: it is stalled, or the network to it"))
	}
	from, migrated, err := migrate(ctx, db, postgres)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres: %w%s%s", err, migrateHint(err), startHint(ctx,
			"migrating the schema, which waits for another replica's migration (pg_advisory_xact_lock) and for locks "+
				"other sessions hold on the store's tables: see pg_stat_activity and pg_locks"))
	}
	o := newOptions(opts)
	st, err := prepare(ctx, &Store{read: db, write: db, dialect: postgres, timeout: o.timeout, migrated: migrated, migratedFrom: from})
	if err != nil {
		return nil, fmt.Errorf("postgres: prepare the team statements: %w%s", err, startHint(ctx,
			"preparing the team statements, which wait for a lock another session holds on the teams table (LOCK TABLE, ALTER TABLE): see pg_locks"))
	}
	st.group = newPGGroupCommit(st, cfg, o)
	f := newPGFeed(cfg, o.feedInterval, newFeedLog(o.logger, st.feed, "postgres listen/notify"), func() { serversLeft.Add(1) })
	st.startFeed(f.run)
	return st, nil
}

// startHint is "; " and what a start that failed during a step waited
// for, when its context (OpenPostgres's) ended with its deadline: a
// partition or a stalled server holds the start silently until then, and
// the driver's error says only "timeout".
func startHint(ctx context.Context, during string) string {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ""
	}
	return "; PostgreSQL did not answer within the start's deadline while " + during
}

// pgMinVersion is the oldest PostgreSQL the store runs on (as
// server_version_num): the group commit needs pg_current_xact_id and
// pg_xact_status, new in 13.
const pgMinVersion = 130000

// checkPGVersion refuses a server older than pgMinVersion, whose every
// group would fail.
func checkPGVersion(ctx context.Context, db *sql.DB) error {
	var num int
	var version string
	if err := db.QueryRowContext(ctx, `SELECT current_setting('server_version_num')::int, current_setting('server_version')`).Scan(&num, &version); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return pgVersionError(num, version)
}

// pgVersionError says why a server of version num (server_version_num;
// version as server_version) will not do, or returns nil.
func pgVersionError(num int, version string) error {
	if num < pgMinVersion {
		return fmt.Errorf("postgres: the server is PostgreSQL %s; the team store needs PostgreSQL 13 or later", version)
	}
	return nil
}

// pgStatementCache is the capacity of each connection's pgx statement and
// statement-description caches, unless the DSN sets its own
// (statement_cache_capacity, description_cache_capacity). The store runs
// a few dozen statements; pgx's default of 512 sizes both caches' maps
// for 512 at connect, which on the 8 idle connections the pool keeps was
// about 0.7 MB of live heap, and so about 1.5 MiB of RSS under the GetTeam
// mix (the collector's goal follows the live heap).
const pgStatementCache = 64

// errDSN says the DSN does not parse without quoting it: pgx's parse
// errors can quote the DSN, password included.
var errDSN = errors.New("the DSN does not parse")

// dsnProblem is errDSN with what pgx found wrong, where it can say so
// without any of the DSN's text but the names and values of settings
// ("invalid port", "failed to configure TLS", "unknown
// target_session_attrs value: x"). pgx's error quotes the DSN, with the
// password redacted only as far as it can tell one, and the error under
// it may quote the DSN or a piece of it (a URL's parse error quotes it
// all; "missing = after" quotes a word, which in a password with a
// space in it is part of the password): both are left out.
func dsnProblem(err error) error {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return errDSN
	}
	// pgx writes "cannot parse `<redacted DSN>`: <what> (<the error
	// under it>)"; the same error without a what and an error under it
	// is that prefix.
	prefix := pgconn.NewParseConfigError(pe.ConnString, "", nil).Error()
	what, ok := strings.CutPrefix(pe.Error(), prefix)
	if under := pe.Unwrap(); ok && under != nil {
		what, ok = strings.CutSuffix(what, " ("+under.Error()+")")
	}
	if !ok || what == "" {
		return errDSN
	}
	return fmt.Errorf("%w: %s", errDSN, what)
}

// pgConfig parses dsn (a libpq connection string or URL) as the store's
// connections use it.
func pgConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, dsnProblem(err)
	}
	// A session that refused a write as read-only (25006: a hot standby,
	// or default_transaction_read_only set for the database or the role
	// when it began) stays so for its life, and the pool keeps sessions
	// in use for ever: close it, so that the next write gets a session
	// with the settings of its moment (or, with target_session_attrs,
	// the new primary). pgx's own handler closes on FATAL errors.
	onError := cfg.OnPgError
	cfg.OnPgError = func(c *pgconn.PgConn, e *pgconn.PgError) bool {
		if e.Code == "25006" {
			return false
		}
		return onError == nil || onError(c, e)
	}
	// pgIdleInTransaction, unless the DSN sets the timeout itself, as a
	// parameter or in libpq's options ("-c name=value").
	const idle = "idle_in_transaction_session_timeout"
	if _, set := cfg.RuntimeParams[idle]; !set && !strings.Contains(cfg.RuntimeParams["options"], idle) {
		setAfterConnect(&cfg.Config, idle, pgIdleInTransaction)
	}
	if !strings.Contains(dsn, "statement_cache_capacity") {
		cfg.StatementCacheCapacity = pgStatementCache
	}
	if !strings.Contains(dsn, "description_cache_capacity") {
		cfg.DescriptionCacheCapacity = pgStatementCache
	}
	// pgx's default mode prepares each statement once per connection and
	// needs the statement cache: with statement_cache_capacity=0 every
	// query would fail ("cannot use QueryExecModeCacheStatement with
	// disabled statement cache"). Such a DSN gets the mode that caches
	// only descriptions, or none, unless it names its own mode. (The
	// store still prepares its few statements on each connection, and its
	// feed LISTENs: it needs a session of its own, not a pooler's
	// transaction pooling.)
	if cfg.StatementCacheCapacity == 0 && !strings.Contains(dsn, "default_query_exec_mode") {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
		if cfg.DescriptionCacheCapacity == 0 {
			cfg.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
		}
	}
	return cfg, nil
}

// pgGroupLockTimeout is how long a group's statements wait for a row
// lock (lock_timeout) before the group gives up and retries its writes
// each on its own: a row held by another session (a replica's
// transaction, an operator's) holds up the writes queued behind it for
// at most this long.
const pgGroupLockTimeout = 250 * time.Millisecond

// pgTimeout bounds each read and each write of PostgreSQL (boundContext):
// past it, with its caller still waiting, the call is UNAVAILABLE, which
// clients retry, on another replica behind a proxy; a write says it may
// have been made (writeErr). Reads are one indexed statement, or a page of
// ListTeams (1000 teams at most); the slowest, a page of a prefix no team
// has, scans the directory, about 0.9 s for two million teams. Writes are
// one statement, or a group's two round trips.
const pgTimeout = 10 * time.Second

// pgIdleInTransaction is the idle_in_transaction_session_timeout of the
// store's sessions (pgConfig), unless the DSN names that parameter. Inside
// a transaction a session waits, its rows locked, for the client's next
// statement: between a group's upserts and its COMMIT, or between the
// statements of a RouteChat note's Add (its location's row locked, and,
// for a new location, the lock that serializes evictions). A replica cut
// off from the database just then (a network partition) would leave them
// locked until PostgreSQL noticed the dead connection — hours, with the
// default TCP keepalive — and every other replica's write of those teams,
// or notes at that location, waiting. PostgreSQL ends the session after
// this long instead, and the transaction with it: a COMMIT that reaches
// it later fails, and the group, once it learns the transaction did not
// commit, retries the writes.
const pgIdleInTransaction = 2 * time.Second

// pgGroup commits a group's writes in one transaction, on a connection
// of its own whose statements wait at most lockTimeout for a row. The
// rows are written in key order, so two replicas' groups that share rows
// take their locks in the same order and never deadlock.
//
// A group takes two round trips: one batch opens the transaction, learns
// its id and makes the upserts; a COMMIT follows. Knowing the id before
// the commit is what lets a group whose COMMIT's answer was lost with
// its connection learn the outcome on another (settle) instead of
// retrying writes that may have been made: retried, a committed write
// would be made twice, reporting created false for a team it created and
// overwriting another replica's write of that team made in between.
type pgGroup struct {
	config *pgx.ConnConfig
	sql    string
	conn   *pgx.Conn // connected at the first group, again after one is lost
	log    *slog.Logger
	// settleWithin bounds the COMMIT, and then settle.
	settleWithin time.Duration
}

// newPGGroupCommit groups st's writes on PostgreSQL (groupCommit).
func newPGGroupCommit(st *Store, store *pgx.ConnConfig, o options) *groupCommit {
	p := &pgGroup{config: groupConnConfig(store, o), sql: st.dialect.q(putSQL), log: o.logger, settleWithin: o.settleWithin}
	return startGroupCommit(&groupCommit{shared: p.commit, alone: st.upsert, remote: st.dialect.remote, closeShared: p.close})
}

// groupConnConfig configures the group's connection: the store's (and so
// its pgIdleInTransaction, pgConfig), with its own lock_timeout.
func groupConnConfig(store *pgx.ConnConfig, o options) *pgx.ConnConfig {
	cfg := ownConnConfig(store, GroupApplicationName)
	setAfterConnect(&cfg.Config, "lock_timeout", o.groupLockTimeout)
	return cfg
}

// setAfterConnect has every session cfg opens SET the timeout setting
// name to d once connected, after what it did before. A SET, not a
// startup parameter: PgBouncer, even in session pooling, refuses a
// startup parameter it does not know ("unsupported startup parameter"),
// so the store could not start behind it, and passes a SET through.
func setAfterConnect(cfg *pgconn.Config, name string, d time.Duration) {
	before := cfg.AfterConnect
	set := "SET " + name + " = " + strconv.FormatInt(d.Milliseconds(), 10)
	cfg.AfterConnect = func(ctx context.Context, c *pgconn.PgConn) error {
		if before != nil {
			if err := before(ctx, c); err != nil {
				return err
			}
		}
		if _, err := c.Exec(ctx, set).ReadAll(); err != nil {
			return fmt.Errorf("%s: %w", set, err)
		}
		return nil
	}
}

// ownConnConfig configures a connection the store keeps for one task (the
// feed's listener, the grouped writes) as the store's, named app in
// pg_stat_activity; a connect waits at most 5 s, so a database that does
// not answer holds the task up no longer.
func ownConnConfig(store *pgx.ConnConfig, app string) *pgx.ConnConfig {
	cfg := store.Copy()
	cfg.RuntimeParams["application_name"] = app
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 5*time.Second {
		cfg.ConnectTimeout = 5 * time.Second
	}
	return cfg
}

// GroupApplicationName names the connection that commits the store's
// grouped writes in pg_stat_activity.
const GroupApplicationName = "switchyard team writes"

// errUnsettled answers the writes of a group whose COMMIT's answer was
// lost when whether it committed could not be learnt either.
var errUnsettled = fmt.Errorf("%w: %w: the connection to PostgreSQL was lost while it was being committed, "+
	"and whether it was could not be learnt", teams.ErrUnavailable, teams.ErrMaybeMade)

// pgSettleWithin bounds how long a group's COMMIT may take, and then how
// long a group whose COMMIT's answer was lost tries to learn the outcome.
const pgSettleWithin = 10 * time.Second

func (p *pgGroup) commit(ctx context.Context, live []*putReq) ([]putResult, error) {
	if p.conn == nil {
		c, err := pgx.ConnectConfig(ctx, p.config)
		if err != nil {
			return nil, err
		}
		p.conn = c
	}
	order := make([]int, len(live))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(live[a].key, live[b].key) })
	var b pgx.Batch
	b.Queue("BEGIN")
	b.Queue("SELECT pg_current_xact_id()::text")
	for _, i := range order {
		b.Queue(p.sql, live[i].key, live[i].city, live[i].nickname)
	}
	results := make([]putResult, len(live))
	br := p.conn.SendBatch(ctx, &b)
	_, err := br.Exec()
	var xact string
	if err == nil {
		err = br.QueryRow().Scan(&xact)
	}
	for _, i := range order {
		if err != nil {
			break
		}
		res := &results[i]
		res.team, res.rev, err = scanUpsert(br.QueryRow())
	}
	err = errors.Join(err, br.Close())
	if err != nil {
		// No COMMIT was sent: nothing was made.
		if !p.conn.IsClosed() {
			if _, rerr := p.conn.Exec(ctx, "ROLLBACK"); rerr != nil {
				p.drop()
			}
		}
		p.forget()
		return nil, err
	}
	// The upserts are made: the COMMIT goes out even if every caller has
	// gone meanwhile (or the store is closing), so that a transaction is
	// never left open on the session.
	pid := p.conn.PgConn().PID()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.settleWithin)
	tag, err := p.conn.Exec(cctx, "COMMIT")
	cancel()
	switch {
	case err == nil && tag.String() == "COMMIT":
		return results, nil
	case err == nil:
		return nil, fmt.Errorf("postgres: COMMIT answered %q", tag.String())
	case !p.conn.IsClosed():
		// PostgreSQL answered that the commit failed: nothing was made.
		if p.conn.PgConn().TxStatus() != 'I' {
			p.drop() // still in the transaction: closing the session ends it
		}
		return nil, err
	}
	p.conn = nil
	committed, serr := p.settle(pid, xact)
	outcome, retry := "committed", false
	switch {
	case serr != nil:
		outcome = "unknown: the writes fail, saying they may have been made"
		for i := range results {
			results[i] = putResult{err: errUnsettled}
		}
	case !committed:
		outcome, retry = "not committed: the writes are retried", true
	}
	p.log.Warn("postgres: a group's COMMIT was sent, and its answer lost with the connection",
		"outcome", outcome, "writes", len(live), "transaction", xact, "error", err, "settling", serr)
	if retry {
		return nil, err
	}
	return results, nil
}

// settle learns, on a connection of its own, whether transaction xact,
// whose COMMIT went out on the session of backend pid and whose answer
// was lost, committed. While xact is in progress the COMMIT may still
// arrive, so that session is ended first. A database that cannot be
// reached, or fails the question, is asked again until settleWithin has
// passed: a crash or a restart, which loses answers, also refuses
// connections for a while. The new connection becomes the group's.
func (p *pgGroup) settle(pid uint32, xact string) (committed bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.settleWithin)
	defer cancel()
	var c *pgx.Conn
	defer func() {
		if c != nil && c != p.conn {
			_ = c.Close(context.Background())
		}
	}()
	ended := false
	pause := 10 * time.Millisecond
	for {
		var status *string // NULL: too old to tell
		err = nil
		if c == nil || c.IsClosed() {
			c, err = pgx.ConnectConfig(ctx, p.config)
		}
		if err == nil {
			err = c.QueryRow(ctx, `SELECT pg_xact_status($1::text::xid8)`, xact).Scan(&status)
		}
		switch {
		case err != nil:
		case status == nil:
			return false, fmt.Errorf("pg_xact_status(%s) is null", xact)
		case *status == "committed" || *status == "aborted":
			p.conn = c
			return *status == "committed", nil
		case !ended:
			// Only the group's own session, should the pid have gone.
			_, err = c.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE pid = $1 AND application_name = $2`, int64(pid), GroupApplicationName)
			if ended = err == nil; ended {
				continue // ask again at once
			}
		}
		if err != nil {
			pause = min(2*pause, time.Second) // asked again, after a growing pause
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				err = fmt.Errorf("transaction %s still in progress", xact)
			}
			return false, fmt.Errorf("%w (%w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// forget drops the group's connection if it was lost.
func (p *pgGroup) forget() {
	if p.conn != nil && p.conn.IsClosed() {
		p.conn = nil
	}
}

// drop closes the group's connection, whose state is in doubt.
func (p *pgGroup) drop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.conn.Close(ctx)
	p.conn = nil
}

func (p *pgGroup) close() {
	if p.conn != nil {
		p.drop()
	}
}

// migrateHint says what to do about a migration PostgreSQL refused: on a
// database that refuses writes (25006), reach the primary; a role refused
// (42501, insufficient_privilege) needs, to create the store's tables,
// CREATE on the schema (since PostgreSQL 15 only the database's owner has
// it in schema public), and to alter those another role made, their
// ownership.
func migrateHint(err error) string {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return ""
	}
	if pg.Code == "25006" {
		return "; the database refuses writes (a hot standby, or default_transaction_read_only), and its schema needs migrating: " +
			"point the DSN at the primary (several hosts: add target_session_attrs=read-write), or start this version once the database takes writes"
	}
	if pg.Code != "42501" {
		return ""
	}
	const migrates = "; the DSN's role creates and migrates the store's tables at start-up: "
	if strings.HasPrefix(pg.Message, "must be owner of") {
		return migrates + "they were made by another role, which must hand them over " +
			"(REASSIGN OWNED BY old_role TO role, or ALTER TABLE ... OWNER TO role for each)"
	}
	return migrates + "grant it CREATE on the schema (GRANT CREATE ON SCHEMA public TO role), or make it the database's owner"
}
