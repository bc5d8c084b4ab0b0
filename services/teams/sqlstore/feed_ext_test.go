package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sqlitelib "modernc.org/sqlite"

	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
	"github.com/switchyard/switchyard/services/teams/storetest"
)

// The change feed's tests: two Store instances on one database stand for
// two processes (the process-level tests are in e2e/scale). Each write
// goes through one store and must reach the other's subscribers within
// teams.FeedBound, in order; losing the source must be reported.

// waitLive waits until feed is live.
func waitLive(t *testing.T, feed *teams.Feed) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !feed.Live(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("feed not live after 10s")
		}
	}
}

// live is ch as a live feed delivers it.
func live(ch teams.Change) teams.Change {
	ch.Live = true
	return ch
}

// crossStore: writes through a reach b's subscriber within the bound and
// in order, renames and deletes included; it returns the worst latency.
func crossStore(t *testing.T, a, b *sqlstore.Store) time.Duration {
	waitLive(t, b.Feed())
	sub := b.Feed().Subscribe()
	defer sub.Close()
	storetest.Changes(t, sub, teams.Change{All: true, Live: true})
	ctx := t.Context()
	var worst time.Duration
	for i := range 20 {
		city := fmt.Sprintf("Feed City %d", i)
		if _, _, err := a.Put(ctx, teams.Team{City: city, Nickname: "N"}); err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		storetest.Changes(t, sub, live(teams.Wrote(teams.CityKey(city), teams.Team{City: city, Nickname: "N"}, true)))
		worst = max(worst, time.Since(acked))
	}
	// A burst, in order: b's subscriber sees the keys in commit order,
	// each with the state its write left. So does a's, with a Local
	// report of each write too (the feed has echoes), in the order of the
	// writes; an echo may come before its write's report.
	if !a.Feed().Echoes() {
		t.Fatal("a store's feed has no echoes")
	}
	own := a.Feed().Subscribe()
	defer own.Close()
	storetest.Changes(t, own, teams.Change{All: true, Live: true})
	var want []teams.Change
	for i := range 50 {
		city := fmt.Sprintf("Burst %02d", i)
		if i%5 == 4 {
			city = fmt.Sprintf("Burst %02d", i-1)
			if _, err := a.Delete(ctx, city); err != nil {
				t.Fatal(err)
			}
			want = append(want, live(teams.Wrote(teams.CityKey(city), teams.Team{}, false)))
			continue
		}
		if _, _, err := a.Put(ctx, teams.Team{City: city, Nickname: "B"}); err != nil {
			t.Fatal(err)
		}
		want = append(want, live(teams.Wrote(teams.CityKey(city), teams.Team{City: city, Nickname: "B"}, true)))
	}
	var got []teams.Change
	deadline, cancel := context.WithTimeout(ctx, teams.FeedBound)
	defer cancel()
	for len(got) < len(want) {
		c, err := sub.Next(deadline)
		if err != nil {
			t.Fatalf("burst: %d of %d changes within the bound: %v", len(got), len(want), err)
		}
		if c.All {
			t.Fatalf("burst: unexpected %+v", c)
		}
		got = append(got, c)
	}
	if !slices.Equal(got, want) {
		t.Errorf("burst arrived as\n%v\nwant\n%v", got, want)
	}
	var locals, echoes []teams.Change
	for len(locals)+len(echoes) < 2*len(want) {
		c, err := own.Next(deadline)
		if err != nil {
			t.Fatalf("burst, the writer's feed: %d local reports and %d echoes of %d writes within the bound: %v", len(locals), len(echoes), len(want), err)
		}
		switch {
		case c.All:
			t.Fatalf("burst, the writer's feed: unexpected %+v", c)
		case !strings.HasPrefix(c.Key, "burst "): // the echo of a write before the burst
		case c.Local:
			c.Local = false
			locals = append(locals, c)
		default:
			echoes = append(echoes, c)
		}
	}
	if !slices.Equal(locals, want) || !slices.Equal(echoes, want) {
		t.Errorf("burst, the writer's feed: local reports\n%v\nechoes\n%v\nwant each\n%v", locals, echoes, want)
	}
	return worst
}

func TestSQLiteFeedAcrossStores(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := openSQLite(t, dir), openSQLite(t, dir)
	defer func() { _ = a.Close(); _ = b.Close() }()
	worst := crossStore(t, a, b)
	t.Logf("SQLite: worst write-to-other-store latency %v (poll every %v)", worst, sqlstore.DefaultFeedInterval)
}

func TestPostgresFeedAcrossStores(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	defer func() { _ = a.Close(); _ = b.Close() }()
	worst := crossStore(t, a, b)
	t.Logf("PostgreSQL: worst write-to-other-store latency %v", worst)
}

// Writes made outside switchyard (by hand, or by an older binary) are
// reported too: the triggers keep the feed's source, not the Store.
func byHand(t *testing.T, driver, dsn string, s *sqlstore.Store, clear string, cleared teams.Change) {
	waitLive(t, s.Feed())
	sub := s.Feed().Subscribe()
	defer sub.Close()
	storetest.Changes(t, sub, teams.Change{All: true, Live: true})
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	for _, stmt := range []string{
		`INSERT INTO teams (city_key, city, nickname, rev) VALUES ('by hand', 'By Hand', 'Psql', 1)`,
		`UPDATE teams SET nickname = 'Bears' WHERE city_key = 'chicago'`,
		`UPDATE teams SET city_key = 'motor city' WHERE city_key = 'detroit'`,
		`DELETE FROM teams WHERE city_key = 'boston'`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	storetest.Changes(t, sub,
		live(teams.Wrote("by hand", teams.Team{City: "By Hand", Nickname: "Psql"}, true)),
		live(teams.Wrote("chicago", teams.Team{City: "Chicago", Nickname: "Bears"}, true)),
		live(teams.Wrote("detroit", teams.Team{}, false)),
		live(teams.Wrote("motor city", teams.Team{City: "Detroit", Nickname: "Wheels"}, true)),
		live(teams.Wrote("boston", teams.Team{}, false)))
	if _, err := db.Exec(clear); err != nil {
		t.Fatal(err)
	}
	storetest.Changes(t, sub, cleared)
}

func TestSQLiteFeedSeesOtherWriters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSQLite(t, dir)
	defer func() { _ = s.Close() }()
	// SQLite has no TRUNCATE: a DELETE of every row reports every key.
	byHand(t, "sqlite", filepath.Join(dir, sqlstore.SQLiteFile), s, `DELETE FROM teams`, live(teams.Wrote("seattle", teams.Team{}, false)))
}

func TestPostgresFeedSeesOtherWriters(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	s := openPostgres(t, dsn)
	defer func() { _ = s.Close() }()
	// TRUNCATE fires no row trigger: its statement trigger says everything.
	byHand(t, "pgx", dsn, s, `TRUNCATE teams`, teams.Change{All: true, Live: true})
}

// A poller that falls behind the change log (more changes between two
// polls than the log keeps) says everything changed instead.
func TestSQLiteFeedLogOverrun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := sqlstore.OpenSQLite(t.Context(), dir, sqlstore.WithFeedInterval(sqlstore.MaxFeedInterval))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	waitLive(t, s.Feed())
	sub := s.Feed().Subscribe()
	defer sub.Close()
	storetest.Changes(t, sub, teams.Change{All: true, Live: true})
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlstore.SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	// One transaction, so no poll falls between the changes.
	if _, err := db.Exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
		INSERT INTO teams (city_key, city, nickname, rev) SELECT 'x' || i, 'X' || i, 'N', 1 FROM n`); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(t.Context(), teams.FeedBound)
	defer cancel()
	for {
		got, err := sub.Next(c)
		if err != nil {
			t.Fatalf("no All after 1500 changes in one poll: %v", err)
		}
		if got.Key != "" {
			t.Fatalf("got %+v: the poller reported keys it could not have read completely", got)
		}
		if got.All && got.Live {
			break
		}
	}
}

// cache is the smallest cache the feed's contract allows, written to test
// the feed the way issue 16's team cache will use it: it drops a key on its
// Change, everything on All, reads through while the feed is down, and
// installs a value only if no change arrived while it was read.
type cache struct {
	read func(ctx context.Context, key string) (string, error) // "" when not found

	mu   sync.Mutex
	live bool
	gen  uint64
	m    map[string]string
	hits atomic.Int64
}

func follow(ctx context.Context, sub *teams.Subscription, read func(context.Context, string) (string, error)) *cache {
	c := &cache{read: read, m: map[string]string{}}
	go func() {
		for {
			ch, err := sub.Next(ctx)
			if err != nil {
				return
			}
			c.mu.Lock()
			c.gen++
			if ch.All {
				clear(c.m)
				c.live = ch.Live
			} else {
				delete(c.m, ch.Key)
			}
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *cache) get(ctx context.Context, key string) (string, error) {
	c.mu.Lock()
	if v, ok := c.m[key]; ok && c.live {
		c.mu.Unlock()
		c.hits.Add(1)
		return v, nil
	}
	gen, live := c.gen, c.live
	c.mu.Unlock()
	v, err := c.read(ctx, key)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	if live && c.live && c.gen == gen {
		c.m[key] = v
	}
	c.mu.Unlock()
	return v, nil
}

// TestPostgresFeedListenerTerminated: the listener's backend is terminated
// and kept from reconnecting while a team is written by another session;
// the subscriber is told everything may have changed, and a cache on the
// feed serves the new value within the bound — during the outage and
// after it — and the feed is live again once connections are allowed.
func TestPostgresFeedListenerTerminated(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	s, err := sqlstore.OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	waitLive(t, s.Feed())
	ctx := t.Context()

	// Sessions opened before the outage: the writer, and the cache's reads.
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	writer, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = writer.Close() }()
	reader, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = reader.Close() }()
	var readMu sync.Mutex
	read := func(ctx context.Context, key string) (string, error) {
		readMu.Lock()
		defer readMu.Unlock()
		var v string
		err := reader.QueryRowContext(ctx, `SELECT nickname FROM teams WHERE city_key = $1`, key).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		}
		return v, err
	}

	sub := s.Feed().Subscribe()
	defer sub.Close()
	events := s.Feed().Subscribe()
	defer events.Close()
	storetest.Changes(t, events, teams.Change{All: true, Live: true})
	c := follow(ctx, sub, read)
	// Warm the cache until it hits (once it has taken the first, live All).
	for deadline := time.Now().Add(teams.FeedBound); c.hits.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if v, err := c.get(ctx, "chicago"); err != nil || v != "Jackals" {
			t.Fatalf("get(chicago) = %q, %v", v, err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache never hit: the test would prove nothing")
		}
	}

	// The database's connections are switched off from another one.
	database := dsnValue(dsn, "dbname")
	admin, err := sql.Open("pgx", strings.Replace(dsn, "dbname="+database, "dbname=postgres", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	if _, err := admin.ExecContext(ctx, `ALTER DATABASE `+database+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	allowed := false
	allow := func() {
		if !allowed {
			allowed = true
			if _, err := admin.ExecContext(context.Background(), `ALTER DATABASE `+database+` ALLOW_CONNECTIONS true`); err != nil {
				t.Error(err)
			}
		}
	}
	defer allow()
	var n int
	if err := admin.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = $2`, sqlstore.FeedApplicationName, database).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminated %d listener backends (%v), want 1", n, err)
	}
	storetest.Changes(t, events, teams.Change{All: true, Live: false})
	if s.Feed().Live() {
		t.Error("the feed says it is live while its listener cannot connect")
	}
	if _, err := writer.ExecContext(ctx, `UPDATE teams SET nickname = 'Bears' WHERE city_key = 'chicago'`); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	time.Sleep(teams.FeedBound - time.Since(written))
	if v, err := c.get(ctx, "chicago"); err != nil || v != "Bears" {
		t.Errorf("during the outage, %v after the write, the cache serves %q (%v), want Bears", time.Since(written), v, err)
	}
	allow()
	// Reconnecting takes what it takes (the retry delay has grown during
	// the outage); the bound is on telling, not on healing.
	waitLive(t, s.Feed())
	storetest.Changes(t, events, teams.Change{All: true, Live: true})
	if v, err := c.get(ctx, "chicago"); err != nil || v != "Bears" {
		t.Errorf("after the outage the cache serves %q (%v), want Bears", v, err)
	}
	if st := s.Feed().Stats(); st.Outages != 1 || !st.Live {
		t.Errorf("Stats after one outage = %+v", st)
	}
}

// dsnValue returns key's value in a key=value DSN.
func dsnValue(dsn, key string) string {
	for _, f := range strings.Fields(dsn) {
		if k, v, ok := strings.Cut(f, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// TestPostgresFeedSilentListener: a listener connection that goes silent
// (a partition: the socket stays open, nothing comes back) is noticed by
// its heartbeat, and the feed reports down within the bound.
func TestPostgresFeedSilentListener(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	proxy := pgtest.NewProxy(t, dsn, "")
	s, err := sqlstore.OpenPostgres(t.Context(), proxy.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	waitLive(t, s.Feed())
	events := s.Feed().Subscribe()
	defer events.Close()
	storetest.Changes(t, events, teams.Change{All: true, Live: true})

	proxy.Freeze(true)
	frozen := time.Now()
	storetest.Changes(t, events, teams.Change{All: true, Live: false})
	if d := time.Since(frozen); d > teams.FeedBound {
		t.Errorf("a silent listener was noticed after %v, bound %v", d, teams.FeedBound)
	}
	t.Logf("silent listener noticed after %v", time.Since(frozen))
	proxy.Freeze(false)
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		ch, err := events.Next(c)
		if err != nil {
			t.Fatalf("not live again after the partition healed: %v", err)
		}
		if ch.All && ch.Live {
			break
		}
	}
}

// copyDatabase copies the SQLite database at path to other (restore:
// from other to path) with SQLite's online backup API, as sqlite3's
// .backup and .restore do, on a connection of its own.
func copyDatabase(t *testing.T, path, other string, restore bool) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(interface {
			NewBackup(string) (*sqlitelib.Backup, error)
			NewRestore(string) (*sqlitelib.Backup, error)
		})
		if !ok {
			return fmt.Errorf("%T has no backup API", dc)
		}
		b, err := c.NewBackup(other)
		if restore {
			b, err = c.NewRestore(other)
		}
		if err != nil {
			return err
		}
		for more := true; more; {
			if more, err = b.Step(-1); err != nil {
				return err
			}
		}
		return b.Finish()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A database restored from a backup under running processes: its change
// log and ids roll back, and the writes after it reuse ids a poller has
// read. The poller finds the row it read last gone or different, and
// reports that everything changed: the other process's cache serves the
// restored teams and, within the feed's bound, the writes after the
// restore. It used to look for ids above its own, find none, and miss
// the restore and every write until the ids passed it again.
func TestSQLiteFeedSeesARestore(t *testing.T) {
	dir := t.TempDir()
	backup := filepath.Join(t.TempDir(), "backup.db")
	a, b := openSQLite(t, dir), openSQLite(t, dir)
	c := cacheOnSecond(t, a, b)
	ctx := t.Context()
	copyDatabase(t, filepath.Join(dir, sqlstore.SQLiteFile), backup, false)
	for _, nickname := range []string{"Bears", "Cubs", "Fire", "Sky", "Sox"} {
		if _, _, err := a.Put(ctx, teams.Team{City: "Chicago", Nickname: nickname}); err != nil {
			t.Fatal(err)
		}
	}
	chicagoWithin(t, c, b, "after another process's writes", "Sox")
	copyDatabase(t, filepath.Join(dir, sqlstore.SQLiteFile), backup, true)
	chicagoWithin(t, c, b, "after the restore", "Jackals")
	if _, _, err := a.Put(ctx, teams.Team{City: "Chicago", Nickname: "Wolves"}); err != nil {
		t.Fatal(err)
	}
	chicagoWithin(t, c, b, "after a write that followed the restore", "Wolves")
}

// cacheOnSecond puts a cache on store b, which follows a's writes through
// b's feed, once both feeds are live; the test's end closes a, and the
// cache with b.
func cacheOnSecond(t *testing.T, a, b *sqlstore.Store) *teams.Cache {
	t.Helper()
	c := teams.NewCache(b, 100, nil)
	t.Cleanup(func() { _ = a.Close(); _ = c.Close() })
	waitLive(t, a.Feed())
	waitLive(t, b.Feed())
	return c
}

// chicagoWithin fails the test unless cache c, on store s, serves
// Chicago's team with nickname want within the feed's bound.
func chicagoWithin(t *testing.T, c *teams.Cache, s *sqlstore.Store, when, want string) {
	t.Helper()
	var cached teams.Team
	for deadline := time.Now().Add(teams.FeedBound); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cached, _ = c.Get(t.Context(), "chicago"); cached.Nickname == want {
			return
		}
	}
	stored, _ := s.Get(t.Context(), "chicago")
	t.Fatalf("%s: the cache serves %q, the store holds %q, want %q within %v", when, cached.Nickname, stored.Nickname, want, teams.FeedBound)
}

// A PostgreSQL restore (pg_restore --clean, by the real tool) drops the
// teams table and makes it again, filled before its triggers exist: no
// notification says what changed. The listener sees the table replaced
// and takes the feed down, so a cache on another store serves the
// restored team within the bound; with --single-transaction too, where
// no moment without the table or its triggers can be seen. While an
// operator has a trigger disabled, the feed is down and reads go to the
// store; triggers disabled and enabled again between two heartbeats are
// seen too.
func TestPostgresFeedSeesARestore(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	bin, err := pgtest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	c := cacheOnSecond(t, a, b)
	ctx := t.Context()
	tool := func(name string, args ...string) {
		t.Helper()
		out, err := exec.CommandContext(ctx, filepath.Join(bin, name), append(args, "-d", dsn)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	dump := filepath.Join(t.TempDir(), "teams.dump")
	tool("pg_dump", "-Fc", "-f", dump)
	put := func(nicknames ...string) {
		t.Helper()
		for _, n := range nicknames {
			if _, _, err := a.Put(ctx, teams.Team{City: "Chicago", Nickname: n}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Each step starts from a live feed whose cache holds Chicago, and
	// must take the feed down within the bound.
	step := func(what, want string, do func()) {
		t.Helper()
		waitLive(t, b.Feed())
		for hits := c.Stats().Hits; c.Stats().Hits == hits; {
			if _, err := c.Get(ctx, "chicago"); err != nil {
				t.Fatal(err)
			}
		}
		events := b.Feed().Subscribe()
		defer events.Close()
		storetest.Changes(t, events, teams.Change{All: true, Live: true})
		do()
		chicagoWithin(t, c, b, what, want)
		storetest.Changes(t, events, teams.Change{All: true, Live: false})
	}
	put("Bears", "Cubs", "Sox")
	chicagoWithin(t, c, b, "after another process's writes", "Sox")
	step("pg_restore --clean", "Jackals", func() { tool("pg_restore", "--clean", dump) })
	waitLive(t, b.Feed())
	put("Wolves")
	chicagoWithin(t, c, b, "after a write that followed the restore", "Wolves")
	step("pg_restore --clean --single-transaction", "Jackals", func() { tool("pg_restore", "--clean", "--single-transaction", dump) })

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	run := func(stmt string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	step("a trigger disabled, then a change", "Fire", func() {
		run(`ALTER TABLE teams DISABLE TRIGGER teams_notify`)
		run(`UPDATE teams SET nickname = 'Fire' WHERE city_key = 'chicago'`)
	})
	run(`ALTER TABLE teams ENABLE TRIGGER teams_notify`)
	// Off and on again between two heartbeats, as pg_restore --data-only
	// --disable-triggers does: the triggers' catalog rows changed.
	step("triggers disabled, a change, enabled again", "Sky", func() {
		run(`ALTER TABLE teams DISABLE TRIGGER ALL`)
		run(`UPDATE teams SET nickname = 'Sky' WHERE city_key = 'chicago'`)
		run(`ALTER TABLE teams ENABLE TRIGGER ALL`)
	})
	step("triggers disabled, a change, enabled again, in one transaction", "Cubs", func() {
		run(`BEGIN; ALTER TABLE teams DISABLE TRIGGER ALL;
			UPDATE teams SET nickname = 'Cubs' WHERE city_key = 'chicago';
			ALTER TABLE teams ENABLE TRIGGER ALL; COMMIT`)
	})
	waitLive(t, b.Feed())
	put("Red Stars")
	chicagoWithin(t, c, b, "after a write once the triggers were back", "Red Stars")
}

// A listener that falls behind its source: one transaction writes so many
// teams that their notifications take the listener longer than the bound
// to take in. Those that reach it while it waits for its heartbeat's query
// are read with that query's answer, in one go, and taken after it, with
// no wait that could time out: the heartbeat's lateness must be noticed
// as they are taken, and the feed go down, as when a heartbeat does not
// come back. It used to stay live and confirm the heartbeat whenever it
// came, so the feed delivered changes later than its bound while
// switchyard_teams_feed_live said 1.
func TestPostgresFeedFallenBehind(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	const interval = sqlstore.MaxFeedInterval
	s, err := sqlstore.OpenPostgres(t.Context(), dsn, sqlstore.WithFeedInterval(interval))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	waitLive(t, s.Feed())
	// Subscribers that take nothing make each change cost the listener
	// more to take in than to read, as a busy process's do.
	for range 300 {
		defer s.Feed().Subscribe().Close()
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	const rows = 20000
	if _, err := db.ExecContext(t.Context(), `INSERT INTO teams (city_key, city, nickname, rev)
		SELECT 'behind '||g, 'Behind '||g, 'N', 1 FROM generate_series(1, $1) g`, rows); err != nil {
		t.Fatal(err)
	}
	// Until the feed goes down or confirms a heartbeat past two
	// intervals (its lag): the first is its promise, the second was the
	// fault.
	limit := 2*interval + interval/2
	var worst time.Duration
	for deadline := time.Now().Add(30 * time.Second); s.Feed().Stats().Outages == 0 && worst <= limit; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("in 30s the feed neither went down nor confirmed a heartbeat: its listener stayed behind, live")
		}
		worst = max(worst, s.Feed().Stats().Lag)
	}
	t.Logf("worst heartbeat round trip confirmed: %v; outages %d", worst, s.Feed().Stats().Outages)
	if worst > limit {
		t.Errorf("the listener confirmed a heartbeat %v after sending it, the feed live; past %v it must go down", worst, 2*interval)
	}
}
