package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard/switchyard/services/teams"
)

// LockForTest holds the database's write lock, as another process writing
// would, until the returned function is called.
func (s *Store) LockForTest(ctx context.Context) (func(), error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE teams SET rev = rev WHERE city_key = 'chicago'`); err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	return func() { _ = tx.Rollback() }, nil
}

// GroupStats reports the Puts taken into a commit, the commits they took,
// and the callers still waiting for their Put to be taken.
func (s *Store) GroupStats() (writes, commits, queued int64) {
	return s.group.writes.Load(), s.group.commits.Load(), s.group.queued.Load()
}

// WithReadLooks sets how often SQLite's read pool looks for reads that
// waited for a connection; 0 for never (the test looks with LookAtReads).
func WithReadLooks(d time.Duration) Option {
	return func(o *options) { o.readLookEvery = d }
}

// LookAtReads looks once, as the read pool's own looks do, and reports
// whether its limit can grow further.
func (s *Store) LookAtReads() bool { return s.reads.look() }

// ReadPool is the pool of the store's reads.
func (s *Store) ReadPool() *sql.DB { return s.read }

// ReadConns are the read pool's first limit and the most it grows to.
func ReadConns() (first, most int) { return readConnsFirst, readConnsMost() }

// WithGroupLockTimeout sets how long PostgreSQL's grouped writes wait for
// a row lock before they are retried each on its own.
func WithGroupLockTimeout(d time.Duration) Option {
	return func(o *options) { o.groupLockTimeout = d }
}

// WithSettleWithin sets how long a PostgreSQL group whose COMMIT's answer
// was lost tries to learn the outcome.
func WithSettleWithin(d time.Duration) Option {
	return func(o *options) { o.settleWithin = d }
}

// WithTimeout bounds each PostgreSQL read and write, and each RouteChat
// note, by d instead of pgTimeout.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// LimitPagesForTest caps the database at n pages for the store's writes,
// as a file system with no room left would (SQLITE_FULL past it).
func (s *Store) LimitPagesForTest(ctx context.Context, n int) error {
	_, err := s.write.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, n))
	return err
}

// ListPlanForTest is SQLite's plan of List's query for opts (EXPLAIN
// QUERY PLAN), its steps' details joined by "; ".
func (s *Store) ListPlanForTest(ctx context.Context, opts teams.ListOptions) (string, error) {
	query, args := listQuery(opts)
	rows, err := s.read.QueryContext(ctx, `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		return "", err
	}
	defer func() { _ = rows.Close() }()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return "", err
		}
		steps = append(steps, detail)
	}
	return strings.Join(steps, "; "), rows.Err()
}
