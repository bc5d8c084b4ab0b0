package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// migrationLockID names the advisory lock that serializes migrations of
// replicas starting at once ("switchyard teams" in ASCII, truncated).
const migrationLockID int64 = 0x7377697463687961

var postgres = dialect{
	name:           "postgres",
	numbered:       true,
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
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		// pgx's parse errors can quote the DSN, password included.
		return nil, fmt.Errorf("postgres: the DSN does not parse; see https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING")
	}
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
	f, err := newPGFeed(dsn, o.feedInterval, newFeedLog(o.logger, st.feed, "postgres listen/notify"))
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	st.startFeed(f.run)
	return st, nil
}
