package sqlstore

import "context"

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
