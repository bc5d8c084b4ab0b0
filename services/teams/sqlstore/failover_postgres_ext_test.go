package sqlstore_test

import (
	"database/sql"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
	"github.com/switchyard/switchyard/services/teams/storetest"
)

// A failover that leaves the old primary running, fenced read-only
// (ALTER SYSTEM SET default_transaction_read_only, reloaded), while
// another server is promoted: with target_session_attrs=read-write the
// store's writes, refused as read-only, move to the new primary, but the
// listener, which never writes, stayed on the old server and its
// heartbeats kept the feed live there, so no replica heard of a write on
// the new primary again and caches served deleted teams for ever. The
// listener must leave a server the DSN's target_session_attrs no longer
// accepts: the feed goes down within the bound (and, with no other host
// here, stays down).
func TestPostgresFeedLeavesAServerTurnedReadOnly(t *testing.T) {
	t.Parallel()
	dsn := privateDatabase(t, "fenced")
	s := openPostgres(t, dsn+" target_session_attrs=read-write")
	defer func() { _ = s.Close() }()
	waitLive(t, s.Feed())
	events := s.Feed().Subscribe()
	defer events.Close()
	storetest.Changes(t, events, teams.Change{All: true, Live: true})
	// A read-only primary is still one for target_session_attrs=primary:
	// that listener stays, and still looks at the table's triggers.
	p := openPostgres(t, dsn+" target_session_attrs=primary")
	defer func() { _ = p.Close() }()
	waitLive(t, p.Feed())
	primaryEvents := p.Feed().Subscribe()
	defer primaryEvents.Close()
	storetest.Changes(t, primaryEvents, teams.Change{All: true, Live: true})

	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	for _, stmt := range []string{`ALTER SYSTEM SET default_transaction_read_only = on`, `SELECT pg_reload_conf()`} {
		if _, err := admin.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	storetest.Changes(t, events, teams.Change{All: true, Live: false})
	if s.Feed().Live() {
		t.Error("the feed is live on a read-only server that the DSN's target_session_attrs=read-write refuses")
	}
	if !p.Feed().Live() {
		t.Error("with target_session_attrs=primary, the feed went down on a primary made read-only")
	}
	if _, err := admin.ExecContext(t.Context(), `BEGIN READ WRITE;
		ALTER TABLE teams DISABLE TRIGGER teams_notify; COMMIT`); err != nil {
		t.Fatal(err)
	}
	storetest.Changes(t, primaryEvents, teams.Change{All: true, Live: false})
	// No host takes writes now (a failover under way: the old primary
	// fenced, the standby not yet promoted): every call is UNAVAILABLE,
	// which clients retry, not INTERNAL ("ValidateConnect failed: read
	// only connection" from every host).
	for i := range 3 {
		if _, _, err := s.Put(t.Context(), teams.Team{City: "Fenced", Nickname: "N"}); !errors.Is(err, teams.ErrUnavailable) || errors.Is(err, teams.ErrMaybeMade) {
			t.Errorf("Put %d with no host taking writes: %v, want ErrUnavailable (and not maybe made)", i, err)
		}
		if _, err := s.Get(t.Context(), "chicago"); !errors.Is(err, teams.ErrUnavailable) {
			t.Errorf("Get %d with no host the DSN accepts: %v, want ErrUnavailable", i, err)
		}
	}
}

// privateDatabase starts a PostgreSQL server of the test's own, whose
// settings it may change (ALTER SYSTEM), and returns the DSN of a new
// database there. The server stops after the test's deferred closes.
func privateDatabase(t *testing.T, name string) string {
	t.Helper()
	srv, err := pgtest.Start(pgtest.Require(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	dsn, err := srv.CreateDatabase(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// When the feed's listener leaves a server that turned read-only (an old
// primary fenced after a failover, still up), the pool's sessions begun
// before are not used again: each may be on that server, and a session
// that only reads never meets the error that would close it, so it went
// on answering cache misses with the old server's teams, which the cache
// then kept. They are recycled on their next use, so that a new session
// finds the server the DSN names now. A feed outage of another kind (its
// connection lost) keeps them: while the feed is down reads go to the
// store, through sessions that still work where no new one may be had.
func TestPostgresPoolAfterFeedOutage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := privateDatabase(t, "pool")
	s := openPostgres(t, dsn+" target_session_attrs=read-write")
	defer func() { _ = s.Close() }()
	waitLive(t, s.Feed())
	events := s.Feed().Subscribe()
	defer events.Close()
	storetest.Changes(t, events, teams.Change{All: true, Live: true})
	database := dsnValue(dsn, "dbname")
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	exec := func(stmts ...string) {
		t.Helper()
		for _, stmt := range stmts {
			if _, err := admin.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
	}
	// The pool's sessions (those not named by the feed or the group) that
	// ran a statement since the server's time since.
	pool := func(since string) []int {
		t.Helper()
		rows, err := admin.QueryContext(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1
			AND application_name NOT IN ($2, $3) AND state_change > $4::timestamptz
			AND pid <> pg_backend_pid() ORDER BY pid`,
			database, sqlstore.FeedApplicationName, sqlstore.GroupApplicationName, since)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rows.Close() }()
		var pids []int
		for rows.Next() {
			var pid int
			if err := rows.Scan(&pid); err != nil {
				t.Fatal(err)
			}
			pids = append(pids, pid)
		}
		return pids
	}
	reads := func() {
		t.Helper()
		for range 20 {
			if _, err := s.Get(ctx, "chicago"); err != nil {
				t.Fatal(err)
			}
		}
	}
	now := func() string {
		t.Helper()
		var ts string
		if err := admin.QueryRowContext(ctx, `SELECT clock_timestamp()::text`).Scan(&ts); err != nil {
			t.Fatal(err)
		}
		return ts
	}
	// served reads, and returns the pool's sessions that served them.
	served := func() []int {
		t.Helper()
		since := now()
		reads()
		pids := pool(since)
		if len(pids) == 0 {
			t.Fatal("no pool session served the reads: the test would prove nothing")
		}
		return pids
	}

	// The listener's connection lost: the pool keeps its sessions.
	before := served()
	var n int
	if err := admin.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = $2`, sqlstore.FeedApplicationName, database).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminated %d listener backends (%v), want 1", n, err)
	}
	storetest.Changes(t, events, teams.Change{All: true, Live: false}, teams.Change{All: true, Live: true})
	if after := served(); !slices.ContainsFunc(after, func(pid int) bool { return slices.Contains(before, pid) }) {
		t.Errorf("after the listener's connection was lost, reads came from new sessions %v only, not the pool's %v", after, before)
	}

	// The server turned read-only under the listener: the pool's sessions
	// begun before are not used again once it takes writes again.
	before = served()
	exec(`ALTER SYSTEM SET default_transaction_read_only = on`, `SELECT pg_reload_conf()`)
	storetest.Changes(t, events, teams.Change{All: true, Live: false})
	exec(`ALTER SYSTEM RESET default_transaction_read_only`, `SELECT pg_reload_conf()`)
	storetest.Changes(t, events, teams.Change{All: true, Live: true})
	for _, pid := range served() {
		if slices.Contains(before, pid) {
			t.Errorf("pool session %d, begun before its server turned read-only, still serves reads after the feed left it (before: %v)", pid, before)
		}
	}
}

// A failover by promotion: the primary stops (fast shutdown), the
// asynchronous standby is promoted, and stores whose DSN names both
// servers with target_session_attrs=read-write follow by themselves.
// Meanwhile calls are UNAVAILABLE; after it, a write through one store
// reaches a cache on the other within the feed's bound, and the team
// the old primary had is served as the new primary has it.
func TestPostgresFailoverByPromotion(t *testing.T) {
	t.Parallel()
	bin := pgtest.Require(t)
	primary, err := pgtest.Start(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Stop()
	ctx := t.Context()
	if _, err := primary.CreateDatabase(ctx, "failover"); err != nil {
		t.Fatal(err)
	}
	standby, err := pgtest.StartStandby(bin, primary, pgtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer standby.Stop()
	dsn := "host=" + primary.Dir() + "," + standby.Dir() + " port=5432,5432 user=postgres dbname=failover sslmode=disable target_session_attrs=read-write"
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	c := cacheOnSecond(t, a, b)
	if _, _, err := a.Put(ctx, teams.Team{City: "Chicago", Nickname: "Before"}); err != nil {
		t.Fatal(err)
	}
	chicagoWithin(t, c, b, "before the failover", "Before")
	// The standby has replayed the write: it survives the failover.
	onStandby, err := sql.Open("pgx", "host="+standby.Dir()+" port=5432 user=postgres dbname=failover sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = onStandby.Close() }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var n string
		if onStandby.QueryRowContext(ctx, `SELECT nickname FROM teams WHERE city_key = 'chicago'`).Scan(&n) == nil && n == "Before" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the standby did not replay the write within 10s")
		}
	}

	events := b.Feed().Subscribe()
	defer events.Close()
	storetest.Changes(t, events, teams.Change{All: true, Live: true})
	primary.Stop()
	storetest.Changes(t, events, teams.Change{All: true, Live: false})
	if _, _, err := a.Put(ctx, teams.Team{City: "Chicago", Nickname: "Between"}); !errors.Is(err, teams.ErrUnavailable) {
		t.Errorf("Put with the primary stopped and the standby not promoted: %v, want ErrUnavailable", err)
	}
	if _, err := c.Get(ctx, "chicago"); !errors.Is(err, teams.ErrUnavailable) {
		t.Errorf("Get through the cache with no primary: %v, want ErrUnavailable", err)
	}
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	storetest.Changes(t, events, teams.Change{All: true, Live: true})
	chicagoWithin(t, c, b, "after the failover", "Before")
	if _, _, err := a.Put(ctx, teams.Team{City: "Chicago", Nickname: "After"}); err != nil {
		t.Fatalf("Put on the new primary: %v", err)
	}
	chicagoWithin(t, c, b, "a write on the new primary", "After")
	if _, err := a.Delete(ctx, "chicago"); err != nil {
		t.Fatalf("Delete on the new primary: %v", err)
	}
	for deadline := time.Now().Add(teams.FeedBound); ; time.Sleep(10 * time.Millisecond) {
		if _, err := c.Get(ctx, "chicago"); errors.Is(err, teams.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a team deleted on the new primary is still served %v later", teams.FeedBound)
		}
	}
}
