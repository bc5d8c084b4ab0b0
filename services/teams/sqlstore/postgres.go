package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
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
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := migrate(ctx, db, postgres); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	st, err := prepare(ctx, &Store{read: db, write: db, dialect: postgres})
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	o := newOptions(opts)
	st.group = newPGGroupCommit(st, cfg, o.groupLockTimeout)
	f := newPGFeed(cfg, o.feedInterval, newFeedLog(o.logger, st.feed, "postgres listen/notify"))
	st.startFeed(f.run)
	return st, nil
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

// pgConfig parses dsn (a libpq connection string or URL) as the store's
// connections use it.
func pgConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errDSN
	}
	if !strings.Contains(dsn, "statement_cache_capacity") {
		cfg.StatementCacheCapacity = pgStatementCache
	}
	if !strings.Contains(dsn, "description_cache_capacity") {
		cfg.DescriptionCacheCapacity = pgStatementCache
	}
	return cfg, nil
}

// pgGroupLockTimeout is how long a group's statements wait for a row
// lock (lock_timeout) before the group gives up and retries its writes
// each on its own: a row held by another session (a replica's
// transaction, an operator's) holds up the writes queued behind it for
// at most this long.
const pgGroupLockTimeout = 250 * time.Millisecond

// pgGroup commits a group's writes in one round trip: its upserts in one
// batch, which PostgreSQL runs as one implicit transaction, on a
// connection of its own whose statements wait at most lockTimeout for a
// row. The rows are written in key order, so two replicas' groups that
// share rows take their locks in the same order and never deadlock.
//
// A batch whose answer is lost with its connection may have committed;
// its writes are retried all the same, and then made twice
// (docs/operations.md, "Durability"): knowing would take the
// transaction's id before the commit, a second round trip per group.
type pgGroup struct {
	config *pgx.ConnConfig
	sql    string
	conn   *pgx.Conn // connected at the first group, again after one is lost
}

// newPGGroupCommit groups st's writes on PostgreSQL (groupCommit).
func newPGGroupCommit(st *Store, store *pgx.ConnConfig, lockTimeout time.Duration) *groupCommit {
	cfg := ownConnConfig(store, GroupApplicationName)
	cfg.RuntimeParams["lock_timeout"] = strconv.FormatInt(lockTimeout.Milliseconds(), 10)
	p := &pgGroup{config: cfg, sql: st.dialect.q(putSQL)}
	return startGroupCommit(&groupCommit{shared: p.commit, alone: st.upsert, remote: st.dialect.remote, closeShared: p.close})
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
	for _, i := range order {
		b.Queue(p.sql, live[i].key, live[i].city, live[i].nickname)
	}
	results := make([]putResult, len(live))
	br := p.conn.SendBatch(ctx, &b)
	var err error
	for _, i := range order {
		res := &results[i]
		if res.team, res.rev, err = scanUpsert(br.QueryRow()); err != nil {
			break
		}
	}
	// The transaction commits at the batch's end: nothing is made until
	// Close has read that it did.
	err = errors.Join(err, br.Close())
	if p.conn.IsClosed() {
		p.conn = nil
	}
	if err != nil {
		return nil, err
	}
	return results, nil
}

func (p *pgGroup) close() {
	if p.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.conn.Close(ctx)
		p.conn = nil
	}
}
