package sqlstore

import (
	"database/sql"

	"github.com/switchyard/switchyard/internal/sqlitevfs"
)

// PoolStats reports the statistics of the store's database/sql pools, by
// name: "read" and "write", or one "rw" when they are the same pool
// (PostgreSQL). The metrics read it at each scrape (telemetry.PoolStatser).
func (s *Store) PoolStats() map[string]sql.DBStats {
	if s.read == s.write {
		return map[string]sql.DBStats{"rw": s.write.Stats()}
	}
	return map[string]sql.DBStats{"read": s.read.Stats(), "write": s.write.Stats()}
}

// CommitStats reports the Puts the store's writer took and the
// transactions it began for them, whatever their outcome (a refused write
// counts, and a group whose COMMIT's answer was lost): writes that arrive
// together share one; when a group's transaction fails, its writes are
// retried one at a time, and those count instead (group.go).
// The metrics read it at each scrape (telemetry.CommitStatser).
func (s *Store) CommitStats() (writes, commits int64, ok bool) {
	if s.group == nil {
		return 0, 0, false
	}
	return s.group.writes.Load(), s.group.commits.Load(), true
}

// FsyncStats reports SQLite's fsyncs through internal/sqlitevfs: those
// that waited in the network poller and those made blocking because the
// kernel refused AIO. The counts are the process's (a process opens one
// SQLite store). PostgreSQL's store, and SQLite's where that VFS is not
// registered (outside Linux), report none (ok false). The metrics read it
// at each scrape (telemetry.FsyncStatser).
func (s *Store) FsyncStats() (parked, blocking int64, ok bool) {
	if s.vfs == "" {
		return 0, 0, false
	}
	parked, blocking = sqlitevfs.Fsyncs()
	return parked, blocking, true
}
