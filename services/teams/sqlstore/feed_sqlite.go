package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/switchyard/switchyard/services/teams"
)

// SQLite's change feed. Processes sharing a data directory see each
// other's commits through the file; PRAGMA data_version, read on one
// pinned connection, changes whenever another connection (of this process
// or another) commits, and costs no page read. When it changes, the
// change log team_changes — filled by triggers on teams, so by every
// writer — says which teams changed since the last id seen and, since
// schema 5, the state each change left. The log keeps the latest
// changeLogKept rows; a poller that missed some (a gap in the ids)
// reports everything changed instead.
//
// Why a change log rather than "everything changed" on each data_version
// change: a cache on this feed would otherwise be emptied by every write
// of every process — with a second process writing now and then, most of
// the time — for the price of one small insert per write.

// changeLogKept is how many rows of team_changes the triggers keep.
const changeLogKept = 1024

// sqliteFeed polls db (one connection, its own) every interval.
type sqliteFeed struct {
	db *sql.DB
	// file is the database file the store opened: once its path names
	// another, the feed is down for good (filegone.go).
	file     *dbFile
	interval time.Duration
	log      *feedLog
}

func (f *sqliteFeed) run(ctx context.Context) {
	defer func() { _ = f.db.Close() }()
	for {
		err := f.poll(ctx)
		if ctx.Err() != nil {
			return
		}
		f.log.down(err, f.interval)
		if !sleep(ctx, f.interval) {
			return
		}
	}
}

// poll follows the database on one pinned connection until an error.
func (f *sqliteFeed) poll(ctx context.Context) error {
	conn, err := f.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	var version int64
	var last logRow
	if err := f.look(ctx, conn, &version, &last, true); err != nil {
		return err
	}
	f.log.live()

	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	prev := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		start := time.Now()
		if err := f.look(ctx, conn, &version, &last, false); err != nil {
			return err
		}
		// What was committed before the look began is reported.
		f.log.feed.Confirm(start)
		// What a change committed just after the previous poll waited.
		f.log.lag(time.Since(prev))
		prev = start
	}
}

// look reads data_version and, when it changed, the change log (first:
// where the log ends) in one read transaction: both from one snapshot of
// the database, so that a change of data_version with nothing new in the
// log is a commit that logged nothing, not one that landed between the
// two reads.
func (f *sqliteFeed) look(ctx context.Context, conn *sql.Conn, version *int64, last *logRow, first bool) error {
	if err := f.file.check(); err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // it read only
	var v int64
	if err := tx.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
		return err
	}
	switch {
	case first:
		*last, err = newestLogRow(ctx, tx)
	case v != *version:
		*last, err = f.readLog(ctx, tx, *last)
	}
	if err != nil {
		return err
	}
	*version = v
	return nil
}

// logRow is a row of team_changes: the feed's place in the log is the
// newest row it has read, which it finds again at the next poll unless
// the log was replaced under it.
type logRow struct {
	id             int64
	key            string
	found          sql.NullBool
	city, nickname sql.NullString
}

const logColumns = `id, city_key, found, city, nickname`

func (r *logRow) scan(row interface{ Scan(...any) error }) error {
	return row.Scan(&r.id, &r.key, &r.found, &r.city, &r.nickname)
}

// newestLogRow is the log's newest row; id 0 when the log is empty.
func newestLogRow(ctx context.Context, tx *sql.Tx) (logRow, error) {
	var r logRow
	err := r.scan(tx.QueryRowContext(ctx, `SELECT `+logColumns+` FROM team_changes ORDER BY id DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return logRow{}, nil
	}
	if err != nil {
		return logRow{}, fmt.Errorf("change log: %w", err)
	}
	return r, nil
}

// readLog reports the changes logged after row last, in a snapshot in
// which data_version changed, and returns the newest row seen.
func (f *sqliteFeed) readLog(ctx context.Context, tx *sql.Tx, last logRow) (logRow, error) {
	// From last itself: it must still be there as it was read. A log
	// without it, or with another row in its place, is not the one this
	// poller followed: the database was restored from a backup (its log
	// and ids rolled back, and later writes reuse the ids) or its file
	// replaced. So is a commit that logged nothing, as every write of a
	// team logs: a backup restored over a log that looks as it did.
	// Every team may have changed then.
	rows, err := tx.QueryContext(ctx, `SELECT `+logColumns+` FROM team_changes WHERE id >= ? ORDER BY id LIMIT ?`, last.id, changeLogKept+1)
	if err != nil {
		return last, err
	}
	defer func() { _ = rows.Close() }()
	var changes []teams.Change
	next, replaced, gap := last, last.id > 0, false
	for rows.Next() {
		var r logRow
		if err := r.scan(rows); err != nil {
			return last, err
		}
		if r.id == last.id && last.id > 0 {
			replaced = r != last
			continue
		}
		// Ids are dense (AUTOINCREMENT, rolled back with their
		// transaction): a gap means pruned rows this poller never read.
		gap = gap || r.id != next.id+1
		next = r
		ch := teams.Change{Key: r.key} // logged before schema 5: no state
		if r.found.Valid {
			ch = teams.Wrote(r.key, teams.Team{City: r.city.String, Nickname: r.nickname.String}, r.found.Bool)
		}
		changes = append(changes, ch)
	}
	if err := rows.Err(); err != nil {
		return last, err
	}
	if replaced || gap || len(changes) == 0 || len(changes) >= changeLogKept {
		// Fell behind the log, or it is another: say everything, and
		// start from its end.
		newest, err := newestLogRow(ctx, tx)
		if err != nil {
			return last, err
		}
		f.log.feed.Reset(true)
		return newest, nil
	}
	for _, ch := range changes {
		f.log.feed.Report(ch)
	}
	return next, nil
}
