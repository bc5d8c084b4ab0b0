package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchyard/switchyard/services/teams"
)

// PostgreSQL's change feed. A trigger on teams (migrations 3 and 5) calls
// pg_notify in the writing transaction, so the notification goes out at
// commit, with the city key and the state the write left as payload (an
// empty payload: everything).
// Each store keeps one dedicated listener connection; NOTIFY reaches only
// sessions listening at that moment, so the feed is down — and its
// subscribers are told everything may have changed — from the moment the
// connection is lost until it listens again, and no catch-up query is
// needed.
//
// A restore (pg_restore --clean, or any DROP and CREATE of the table)
// makes a new teams table and fills it before its triggers exist, so no
// notification says what it changed; pg_restore --disable-triggers, or
// an operator, can turn the triggers off. The listener therefore follows
// one table and its triggers: with each heartbeat it also looks at which
// table "teams" names, whether both triggers are there and enabled, and
// the version of their catalog rows. A table gone or replaced, or
// triggers missing, disabled or altered since, takes the feed down, so
// the subscribers are told everything may have changed and reads go to
// the store; it comes back, following the table as it is then, once that
// table has its triggers enabled.
//
// A connection can also die silently (a network partition leaves the
// socket open). The listener therefore sends itself a heartbeat every
// interval: a NOTIFY on a channel of its own, from its own session.
// PostgreSQL delivers notifications in commit order, so a heartbeat coming
// back also proves that every change committed before it was delivered;
// one not back within two intervals takes the feed down, also while the
// listener is still taking in notifications that came before it (a burst
// read with a query's answer, taken in after it). A write
// acknowledged at T is thus delivered, or the feed reported down, by
// T + 3 intervals (600 ms by default).

const (
	// TeamsChannel is the NOTIFY channel of team changes by key, which
	// binaries of schema 3 and 4 follow.
	TeamsChannel = "switchyard_teams"
	// TeamStatesChannel is the NOTIFY channel of team changes with the
	// state each left (stateNotification), which this one follows.
	TeamStatesChannel = "switchyard_team_states"
	// FeedApplicationName names the listener's session in
	// pg_stat_activity.
	FeedApplicationName = "switchyard team feed"
	// feedMinRetry and feedMaxRetry bound the reconnect delay, which
	// doubles after each failed attempt.
	feedMinRetry = 50 * time.Millisecond
	feedMaxRetry = 2 * time.Second
)

// errLeftReadOnly: the listener's server turned read-only, which the
// DSN's target_session_attrs refuses.
var errLeftReadOnly = errors.New("the server turned read-only, which the DSN's target_session_attrs refuses")

// pgFeed keeps the listener connection of config.
type pgFeed struct {
	config   *pgx.ConnConfig
	interval time.Duration
	log      *feedLog
	// heartbeat is this listener's private channel.
	heartbeat string
	// left, if not nil, is called when the listener leaves a server that
	// turned read-only (errLeftReadOnly): the store's other sessions may
	// be on that server too. Another outage (the connection lost) leaves
	// them be: while the feed is down, reads go to the store through them.
	left func()
}

// newPGFeed listens with a connection of its own, configured as the
// store's (ownConnConfig), and calls left (if not nil) whenever the
// listener leaves a server that turned read-only.
func newPGFeed(store *pgx.ConnConfig, interval time.Duration, log *feedLog, left func()) *pgFeed {
	cfg := ownConnConfig(store, FeedApplicationName)
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	return &pgFeed{config: cfg, interval: interval, log: log, heartbeat: "switchyard_feed_" + hex.EncodeToString(id), left: left}
}

func (f *pgFeed) run(ctx context.Context) {
	retry := feedMinRetry
	for {
		listened, err := f.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		if listened {
			retry = feedMinRetry
			if f.left != nil && errors.Is(err, errLeftReadOnly) {
				f.left()
			}
		}
		f.log.down(err, retry)
		if !sleep(ctx, retry) {
			return
		}
		retry = min(2*retry, feedMaxRetry)
	}
}

// listen connects, listens and follows notifications until an error;
// listened tells whether it got as far as listening.
func (f *pgFeed) listen(ctx context.Context) (listened bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, f.config)
	if err != nil {
		return false, err
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(c)
	}()
	if err := exec(ctx, conn, "LISTEN "+TeamStatesChannel+"; LISTEN "+f.heartbeat, max(2*f.interval, time.Second)); err != nil {
		return false, err
	}
	// The table followed is the one found after LISTEN: a change to it
	// from then on is notified, or seen by a heartbeat.
	var followed followedTable
	if err := f.lookAtTable(ctx, conn, "", &followed); err != nil {
		return false, err
	}
	f.log.live()

	var (
		seq      int
		sentAt   time.Time // of the heartbeat not back yet; zero if none
		nextBeat = time.Now()
	)
	for {
		now := time.Now()
		if sentAt.IsZero() && !now.Before(nextBeat) {
			seq++
			sentAt, nextBeat = now, now.Add(f.interval)
			if err := f.lookAtTable(ctx, conn, strconv.Itoa(seq), &followed); err != nil {
				return true, err
			}
		}
		wake := nextBeat
		if !sentAt.IsZero() {
			wake = sentAt.Add(2 * f.interval)
		}
		wctx, cancel := context.WithDeadline(ctx, wake)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return true, ctx.Err()
		case pgconn.Timeout(err) && !conn.IsClosed():
			if !sentAt.IsZero() && time.Since(sentAt) >= 2*f.interval {
				return true, fmt.Errorf("heartbeat not back after %v", time.Since(sentAt).Round(time.Millisecond))
			}
			continue
		default:
			return true, err
		}
		// Notifications that came with a query's answer (the heartbeat's)
		// were read with it and are taken here without any wait that could
		// time out: a listener taking in a burst of them more slowly than
		// they were read is behind its source, and must see its heartbeat
		// overdue here too.
		if !sentAt.IsZero() && time.Since(sentAt) >= 2*f.interval {
			return true, fmt.Errorf("heartbeat not back after %v: the listener is behind the notifications", time.Since(sentAt).Round(time.Millisecond))
		}
		switch n.Channel {
		case TeamStatesChannel:
			if ch, ok := parseState(n.Payload); ok {
				f.log.feed.Report(ch)
			} else {
				f.log.feed.Reset(true)
			}
		case f.heartbeat:
			if n.Payload == strconv.Itoa(seq) && !sentAt.IsZero() {
				// Every change committed before it was sent is reported.
				f.log.feed.Confirm(sentAt)
				f.log.lag(time.Since(sentAt))
				sentAt = time.Time{}
			}
		}
	}
}

// watchSQL finds the table "teams" names in the listener's search_path,
// NULL if none; counts its change triggers that fire (enabled: 'O' or
// 'A'; 'R' fires only in replication sessions, 'D' never); and names the
// version of their catalog rows: the transaction that last wrote each
// (xmin), which every DISABLE or ENABLE changes, so that triggers turned
// off and on again between two heartbeats are seen too. None of it waits
// for a lock a restore holds: it reads the catalogs.
const watchSQL = `SELECT to_regclass('teams')::oid,
	count(*) FILTER (WHERE tgenabled IN ('O', 'A')),
	coalesce(string_agg(tgname || ':' || xmin::text, ',' ORDER BY tgname), '')
	FROM pg_trigger WHERE tgrelid = to_regclass('teams') AND tgname IN ('teams_notify', 'teams_notify_truncate')`

// followedTable is the teams table the listener follows: its oid and its
// triggers' version (watchSQL); the zero value before the first look.
type followedTable struct {
	oid      uint32
	triggers string
}

// lookAtTable checks the teams table the listener follows and, with
// beat, sends heartbeat beat in the same round trip. On the first look
// (followed zero) it takes the table found. It fails when the table is
// gone or replaced, when a trigger is missing or disabled, and when the
// triggers changed since they were followed; and, with beat, when the
// server turned read-only and the DSN's target_session_attrs (read-write,
// say) no longer accepts it.
func (f *pgFeed) lookAtTable(ctx context.Context, conn *pgx.Conn, beat string, followed *followedTable) error {
	limit := 2 * f.interval // a heartbeat's: the bound on noticing a silent connection
	if beat == "" {
		limit = max(limit, time.Second) // as LISTEN's, just before
	}
	c, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var (
		oid      *uint32
		enabled  int64
		triggers string
		err      error
	)
	readOnly := "off"
	if beat == "" {
		err = conn.QueryRow(c, watchSQL).Scan(&oid, &enabled, &triggers)
	} else {
		err = conn.QueryRow(c, `SELECT pg_notify($1, $2), current_setting('transaction_read_only'), w.* FROM (`+watchSQL+`) w`,
			f.heartbeat, beat).Scan(nil, &readOnly, &oid, &enabled, &triggers)
		if err != nil {
			err = fmt.Errorf("heartbeat: %w", err)
		}
	}
	if err != nil {
		return err
	}
	if readOnly == "on" && f.config.ValidateConnect != nil {
		// The server turned read-only under the listener (an old primary
		// fenced with default_transaction_read_only after a failover): the
		// store's writes, refused, go to the server the DSN's
		// target_session_attrs finds now, and so must the listener, which
		// would otherwise never hear of them.
		if err := f.config.ValidateConnect(c, conn.PgConn()); err != nil {
			return fmt.Errorf("%w (%w): a failover? the listener leaves it for the server the DSN finds now", errLeftReadOnly, err)
		}
	}
	first := followed.oid == 0
	switch {
	case oid == nil:
		return errors.New(`no table "teams" (a restore under way?): its changes cannot be followed`)
	case !first && *oid != followed.oid:
		return errors.New(`the table "teams" was dropped and made again (a restore?): every team may have changed`)
	case enabled != 2:
		return errors.New(`the table "teams" lacks its change triggers teams_notify and teams_notify_truncate, or has them disabled ` +
			`(a restore under way?): its changes would not be notified`)
	case !first && triggers != followed.triggers:
		return errors.New(`the change triggers of the table "teams" were altered (disabled and enabled again?): ` +
			`changes made meanwhile may not have been notified`)
	}
	*followed = followedTable{oid: *oid, triggers: triggers}
	return nil
}

// stateNotification is the payload of TeamStatesChannel (migration 5).
type stateNotification struct {
	Key      *string `json:"key"`
	Found    *bool   `json:"found"`
	City     string  `json:"city"`
	Nickname string  `json:"nickname"`
}

// parseState reads a TeamStatesChannel payload; false when it names no
// key and state (the empty payload of a TRUNCATE or of a state too long
// for NOTIFY, or a payload nobody should have sent): the caller reports
// everything changed.
func parseState(payload string) (teams.Change, bool) {
	var n stateNotification
	if json.Unmarshal([]byte(payload), &n) != nil || n.Key == nil || n.Found == nil {
		return teams.Change{}, false
	}
	return teams.Wrote(*n.Key, teams.Team{City: n.City, Nickname: n.Nickname}, *n.Found), true
}

// exec runs sql on conn within limit.
func exec(ctx context.Context, conn *pgx.Conn, sql string, limit time.Duration) error {
	c, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	_, err := conn.Exec(c, sql)
	return err
}
