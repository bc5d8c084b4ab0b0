package sqlstore

import (
	"database/sql"
	"log/slog"
	"runtime"
	"time"
)

// SQLite's read pool starts with readConnsFirst connections and doubles
// its limit, up to readConnsMost(), each time reads have waited for a
// connection at readWaitLooks looks in a row, readLookEvery apart.
//
// Each SQLite connection holds 100-300 KiB (its first reads, then
// statements and caches) that modernc's allocator keeps for the life of
// the process, closed or not (BENCHMARKS.md, "A read pool that grows").
// With the team cache in front, GetTeam reads the store only on a miss,
// and misses of one team share one read: a limit of max(4, GOMAXPROCS)
// from the start was opened in full by the first burst of misses as the
// server started, and then sat idle. Reads that keep the pool busy (the
// cache off, a working set larger than the cache, ListTeams from many
// clients) have waited at every look, and the limit doubles every
// readWaitLooks x readLookEvery (300 ms: 2, 4, 8, 16 connections within
// 0.9 s); a burst that clears between two looks leaves it.
const (
	readConnsFirst = 2
	readWaitLooks  = 3
	readLookEvery  = 100 * time.Millisecond
)

// readConnsMost is the read pool's limit once grown: GetTeam's read
// concurrency with the cache off.
func readConnsMost() int { return max(4, runtime.GOMAXPROCS(0)) }

// readLimit grows db's connection limit while reads keep waiting for one.
type readLimit struct {
	db     *sql.DB
	log    *slog.Logger
	limit  int
	most   int
	waits  int64 // db's WaitCount at the last look
	streak int   // looks in a row that found a read had waited
}

// newReadLimit sets db's limit to its first value.
func newReadLimit(db *sql.DB, log *slog.Logger) *readLimit {
	r := &readLimit{db: db, log: log, limit: readConnsFirst, most: readConnsMost()}
	r.set()
	return r
}

// set applies r.limit; idle connections are kept up to it, since a
// connection closed frees none of its memory.
func (r *readLimit) set() {
	r.db.SetMaxOpenConns(r.limit)
	r.db.SetMaxIdleConns(r.limit)
}

// look counts the reads that waited for a connection since the last look,
// doubles the limit after readWaitLooks looks in a row found some, and
// reports whether the limit can grow further.
func (r *readLimit) look() bool {
	waits := r.db.Stats().WaitCount
	waited := waits > r.waits
	r.waits = waits
	if !waited {
		r.streak = 0
		return r.limit < r.most
	}
	if r.streak++; r.streak >= readWaitLooks && r.limit < r.most {
		was := r.limit
		r.limit, r.streak = min(2*r.limit, r.most), 0
		r.set()
		r.log.Info("sqlite read pool grown: reads kept waiting for a connection",
			"connections_max", r.limit, "was", was, "waits", waits)
	}
	return r.limit < r.most
}

// run looks every interval until the limit is at its most or stop closes.
func (r *readLimit) run(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if !r.look() {
				return
			}
		}
	}
}
