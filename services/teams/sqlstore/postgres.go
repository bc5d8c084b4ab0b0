package sqlstore

import (
	"context"
	"errors"
	"fmt"
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
// Its change feed keeps one more connection, listening (feed_postgres.go).
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
