package sqlstore

import (
	"context"
	"database/sql"
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
	db       *sql.DB
	interval time.Duration
	log      *feedLog
}

func (f *sqliteFeed) run(ctx context.Context) {
	defer func() { _ = f.db.Close() }()
	var downSince time.Time
	for first := true; ; first = false {
		err := f.poll(ctx, first, &downSince)
		if ctx.Err() != nil {
			return
		}
		if downSince.IsZero() {
			downSince = time.Now()
		}
		f.log.down(err, f.interval)
		if !sleep(ctx, f.interval) {
			return
		}
	}
}

// poll follows the database on one pinned connection until an error.
func (f *sqliteFeed) poll(ctx context.Context, first bool, downSince *time.Time) error {
	conn, err := f.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	var version, last int64
	// data_version first: a commit between the two reads is in the log
	// already and only makes the next poll read nothing new.
	if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&version); err != nil {
		return err
	}
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM team_changes`).Scan(&last); err != nil {
		return err
	}
	var downFor time.Duration
	if !first {
		downFor = max(time.Since(*downSince), time.Nanosecond)
	}
	*downSince = time.Time{}
	f.log.live(downFor)

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
		var v int64
		if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
			return err
		}
		if v != version {
			version = v
			if last, err = f.readLog(ctx, conn, last); err != nil {
				return err
			}
		}
		// What a change committed just after the previous poll waited.
		f.log.lag(time.Since(prev))
		prev = start
	}
}

// readLog reports the changes logged after id last and returns the newest
// id seen.
func (f *sqliteFeed) readLog(ctx context.Context, conn *sql.Conn, last int64) (int64, error) {
	rows, err := conn.QueryContext(ctx, `SELECT id, city_key, found, city, nickname FROM team_changes WHERE id > ? ORDER BY id LIMIT ?`, last, changeLogKept)
	if err != nil {
		return last, err
	}
	defer func() { _ = rows.Close() }()
	var changes []teams.Change
	next, gap := last, false
	for rows.Next() {
		var id int64
		var key string
		var found sql.NullBool
		var city, nickname sql.NullString
		if err := rows.Scan(&id, &key, &found, &city, &nickname); err != nil {
			return last, err
		}
		// Ids are dense (AUTOINCREMENT, rolled back with their
		// transaction): a gap means pruned rows this poller never read.
		gap = gap || id != next+1
		next = id
		ch := teams.Change{Key: key} // logged before schema 5: no state
		if found.Valid {
			ch = teams.Wrote(key, teams.Team{City: city.String, Nickname: nickname.String}, found.Bool)
		}
		changes = append(changes, ch)
	}
	if err := rows.Err(); err != nil {
		return last, err
	}
	if gap || len(changes) == changeLogKept {
		// Fell behind the log: say everything, and start from its end.
		if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM team_changes`).Scan(&next); err != nil {
			return last, fmt.Errorf("change log: %w", err)
		}
		f.log.feed.Reset(true)
		return next, nil
	}
	for _, ch := range changes {
		f.log.feed.Report(ch)
	}
	return next, nil
}
