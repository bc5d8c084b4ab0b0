package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/switchyard/switchyard/services/teams"
)

// maxGroup bounds the writes that share one commit.
const maxGroup = 64

// errClosed answers a write that arrives after Close.
var errClosed = fmt.Errorf("%w: the team store is closed", teams.ErrUnavailable)

// groupCommit runs the Puts that arrive together in one transaction, so
// that they share one commit and with it one fsync. On SQLite
// (synchronous=FULL syncs the WAL at every commit) an fsync blocks the
// thread that holds a Go P until the runtime's monitor notices, which on
// one core stalls every other call for the fsync's duration; fewer
// commits mean fewer stalls, and more writes a second. On PostgreSQL each
// write was a transaction of its own, with a WAL flush each (one fsync
// per write under the GetTeam mix, pg_stat_wal): grouped, the database
// does a quarter of the flushes and about half the work per write
// (BENCHMARKS.md, "Group commit on PostgreSQL").
//
// What a caller sees does not change: Put returns once its write is
// durable, with the row the write produced, or with an error and the
// write not made. When a shared commit fails, every write in it is
// retried on its own, so one failing write never fails another. (One
// exception, on PostgreSQL: a group whose COMMIT's answer was lost, and
// whose outcome could not be learnt after it, answers each write with
// an error that says so, and retries none; see pgGroup.)
//
// On SQLite a write on its own runs as before, under its caller's
// context, and so do the retries: the database has one writer anyway.
// On PostgreSQL (remote) writes to different rows never waited for each
// other, and a write waiting for a row another session holds must not
// hold up the writes queued behind it. So every commit there is shared
// (a write on its own too), on a connection whose statements wait at most
// pgGroupLockTimeout for a row lock, and the retries of a failed one run
// each on its own goroutine, through the pool, as every write did before.
type groupCommit struct {
	// shared makes the writes of live in one commit and reports each
	// write's result, or an error and none of them made.
	shared func(ctx context.Context, live []*putReq) ([]putResult, error)
	// alone makes one write on its own, under its caller's context.
	alone func(ctx context.Context, key, city, nickname string) (teams.Team, int64, error)
	// remote: PostgreSQL's rules above.
	remote bool
	// closeShared releases what shared keeps (a connection); may be nil.
	closeShared func()
	retries     sync.WaitGroup // retries running on their own goroutines

	reqs chan *putReq    // unbuffered: a send succeeds only while run runs
	ctx  context.Context // done once close is called: run takes no more writes
	end  context.CancelFunc
	done chan struct{} // closed when run has returned

	writes, commits atomic.Int64
	queued          atomic.Int64 // callers waiting for run to take their write
}

type putReq struct {
	ctx                 context.Context
	key, city, nickname string
	res                 chan putResult // buffered: run never waits for a caller
}

type putResult struct {
	team teams.Team
	rev  int64
	err  error
}

// newGroupCommit groups s's writes: SQLite's share a transaction on s's
// write pool.
func newGroupCommit(s *Store) *groupCommit {
	return startGroupCommit(&groupCommit{shared: sqlTogether(s.write, s.put), alone: s.upsert})
}

// startGroupCommit starts g's writer goroutine; g has its way of
// committing set.
func startGroupCommit(g *groupCommit) *groupCommit {
	g.reqs, g.done = make(chan *putReq), make(chan struct{})
	g.ctx, g.end = context.WithCancel(context.Background())
	go g.run()
	return g
}

// errNotTaken is wrapped around the context's error of a write whose
// context ended while it waited to join a group (behind one that has not
// committed): it was never sent, so it was not made.
var errNotTaken = errors.New("the write waited behind others and was not made")

// put runs one write, in a group with those waiting beside it.
func (g *groupCommit) put(ctx context.Context, key, city, nickname string) (teams.Team, int64, error) {
	r := &putReq{ctx: ctx, key: key, city: city, nickname: nickname, res: make(chan putResult, 1)}
	g.queued.Add(1)
	select {
	case g.reqs <- r:
		g.queued.Add(-1)
	case <-g.ctx.Done():
		g.queued.Add(-1)
		return teams.Team{}, 0, errClosed
	case <-ctx.Done():
		g.queued.Add(-1)
		return teams.Team{}, 0, fmt.Errorf("%w: %w", errNotTaken, ctx.Err())
	}
	select {
	case res := <-r.res:
		return res.team, res.rev, res.err
	case <-ctx.Done():
		// The write may still be made, as one interrupted while it
		// commits may: the caller's status (CANCELED, DEADLINE_EXCEEDED)
		// does not say it was not.
		return teams.Team{}, 0, ctx.Err()
	}
}

func (g *groupCommit) run() {
	defer close(g.done)
	batch := make([]*putReq, 0, maxGroup)
	for {
		select {
		case <-g.ctx.Done():
			return
		case r := <-g.reqs:
			batch = append(batch[:0], r)
		}
		// On one P the writes that arrived with this one have not run
		// yet: yield once so they can queue behind it.
		runtime.Gosched()
	more:
		for len(batch) < maxGroup {
			select {
			case r := <-g.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		g.commit(batch)
		clear(batch)
	}
}

// commit makes batch's writes, together when there are several (and on
// PostgreSQL always).
func (g *groupCommit) commit(batch []*putReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.res <- putResult{err: err} // gone before its write began: not made
			continue
		}
		live = append(live, r)
	}
	g.writes.Add(int64(len(live)))
	switch {
	case len(live) == 0:
		return
	case len(live) == 1 && !g.remote:
		g.commits.Add(1)
		live[0].res <- g.single(live[0])
		return
	}
	results, err := g.together(live)
	if err == nil {
		g.commits.Add(1)
		for i, r := range live {
			r.res <- results[i]
		}
		return
	}
	for _, r := range live {
		g.commits.Add(1)
		if !g.remote {
			r.res <- g.single(r)
			continue
		}
		g.retries.Add(1)
		go func() {
			defer g.retries.Done()
			r.res <- g.single(r)
		}()
	}
}

// single makes r's write in its own commit, unless its caller has gone.
func (g *groupCommit) single(r *putReq) putResult {
	if err := r.ctx.Err(); err != nil {
		return putResult{err: err}
	}
	var res putResult
	res.team, res.rev, res.err = g.alone(r.ctx, r.key, r.city, r.nickname)
	return res
}

// together makes every write of live in one commit, which lasts as long
// as one of their callers still waits (or until the store closes); on
// PostgreSQL a group whose upserts are made sends its COMMIT regardless
// (pgGroup).
func (g *groupCommit) together(live []*putReq) ([]putResult, error) {
	ctx, cancel := context.WithCancel(g.ctx)
	defer cancel()
	var waiting atomic.Int64
	waiting.Store(int64(len(live)))
	for _, r := range live {
		stop := context.AfterFunc(r.ctx, func() {
			if waiting.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	return g.shared(ctx, live)
}

// sqlTogether makes a group's writes in one transaction on db, with stmt
// (the Put statement, prepared on db).
func sqlTogether(db *sql.DB, stmt *sql.Stmt) func(ctx context.Context, live []*putReq) ([]putResult, error) {
	return func(ctx context.Context, live []*putReq) (results []putResult, err error) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				_ = tx.Rollback()
			}
		}()
		st := tx.StmtContext(ctx, stmt)
		results = make([]putResult, len(live))
		for i, r := range live {
			res := &results[i]
			if res.team, res.rev, err = scanUpsert(st.QueryRowContext(ctx, r.key, r.city, r.nickname)); err != nil {
				return nil, err
			}
		}
		return results, tx.Commit()
	}
}

// close stops taking writes, interrupts a shared transaction being
// made (a write on its own runs under its caller's context and
// finishes; on PostgreSQL a group whose upserts are made still sends its
// COMMIT and, if the answer is lost, learns the outcome: up to twice
// pgSettleWithin), and waits for run to return.
func (g *groupCommit) close() {
	g.end()
	<-g.done
	g.retries.Wait()
	if g.closeShared != nil {
		g.closeShared()
	}
}
