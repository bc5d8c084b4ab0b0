package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"

	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// holdRow has another session of dsn lock city's row (it must exist), as
// a replica's or an operator's open transaction would, until the returned
// function is called.
func holdRow(t *testing.T, dsn, city string) (release func()) {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var key string
	if err := tx.QueryRowContext(t.Context(), `SELECT city_key FROM teams WHERE city_key = $1 FOR UPDATE`, teams.CityKey(city)).Scan(&key); err != nil {
		t.Fatalf("lock %s: %v", city, err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			_ = tx.Rollback()
			_ = db.Close()
		}
	}
	t.Cleanup(release)
	return release
}

// overCities runs query, an aggregate over the rows whose city_key is in
// $1, for cities' keys.
func overCities(t *testing.T, dsn, query string, cities ...string) int64 {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys := make([]string, len(cities))
	for i, c := range cities {
		keys[i] = teams.CityKey(c)
	}
	var n int64
	if err := db.QueryRowContext(t.Context(), query, keys).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// blockedPostgresStore opens a store on a new database whose grouped
// writes wait up to lockTimeout for a row, runs setup on the database,
// and has a write of "First" wait for another session's lock on its row;
// writes queue behind it.
func blockedPostgresStore(t *testing.T, lockTimeout time.Duration, setup func(db *sql.DB)) (s *sqlstore.Store, dsn string, release func(), first <-chan error) {
	t.Helper()
	dsn = pgtest.Database(t)
	s = openPostgres(t, dsn, sqlstore.WithGroupLockTimeout(lockTimeout))
	t.Cleanup(func() { _ = s.Close() })
	if _, _, err := s.Put(t.Context(), teams.Team{City: "First", Nickname: "Ones"}); err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		setup(db)
		_ = db.Close()
	}
	release = holdRow(t, dsn, "First")
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Put(t.Context(), teams.Team{City: "First", Nickname: "Twos"})
		done <- err
	}()
	until(t, "the second write of First to be taken", func() bool { w, _, q := s.GroupStats(); return w == 2 && q == 0 })
	return s, dsn, release, done
}

func TestPostgresWritesArrivingTogetherShareACommit(t *testing.T) {
	t.Parallel()
	s, dsn, release, first := blockedPostgresStore(t, time.Minute, nil)
	var cities []string
	for i := range 20 {
		cities = append(cities, fmt.Sprintf("Group %d", i))
	}
	wait := putAll(t, s, cities...)
	release()
	if err := <-first; err != nil {
		t.Fatalf("the write of First that waited for its row: %v", err)
	}
	for c, err := range wait() {
		if err != nil {
			t.Errorf("Put %s: %v", c, err)
		}
	}
	// Two commits for First; the 20 that queued while the second waited
	// share one (three would still be grouping).
	if writes, commits, _ := s.GroupStats(); writes != 22 || commits > 5 {
		t.Errorf("%d writes in %d commits, want 22 in at most 5", writes, commits)
	}
	// The transactions that last wrote each row.
	if n := overCities(t, dsn, `SELECT count(DISTINCT xmin::text) FROM teams WHERE city_key = ANY($1)`, cities...); n > 3 {
		t.Errorf("the 20 grouped rows were written by %d transactions, want at most 3", n)
	}
	for _, c := range cities {
		if got, err := s.Get(t.Context(), c); err != nil || got.Nickname != "Nick "+c {
			t.Errorf("Get %s after a grouped Put = %+v, %v", c, got, err)
		}
	}
	if got, err := s.Get(t.Context(), "First"); err != nil || got.Nickname != "Twos" {
		t.Errorf("Get First = %+v, %v, want the write that waited for its row", got, err)
	}
}

// A write that waits for a row another session holds gives up its group
// after the lock timeout and waits on its own: the writes behind it are
// made while the row is still held.
func TestPostgresWriteWaitingForARowHoldsUpNoOther(t *testing.T) {
	t.Parallel()
	s, _, release, first := blockedPostgresStore(t, 100*time.Millisecond, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, c := range []string{"Free", "Also Free"} {
		if _, _, err := s.Put(ctx, teams.Team{City: c, Nickname: "Nick " + c}); err != nil {
			t.Fatalf("Put %s while First's row is held: %v", c, err)
		}
	}
	select {
	case err := <-first:
		t.Fatalf("the write of First ended (%v) while another session held its row", err)
	default:
	}
	release()
	if err := <-first; err != nil {
		t.Fatalf("the write of First, once its row was free: %v", err)
	}
	if got, err := s.Get(t.Context(), "First"); err != nil || got.Nickname != "Twos" {
		t.Errorf("Get First = %+v, %v, want the write that waited", got, err)
	}
	// The group that gave up ended its transaction: its session is idle,
	// not inside a failed transaction that every later group would fail
	// in (or, had it not failed, commit into).
	var state string
	if err := s.ReadPool().QueryRowContext(t.Context(), `SELECT state FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`, sqlstore.GroupApplicationName).Scan(&state); err != nil || state != "idle" {
		t.Errorf("the group's session is %q (%v), want idle", state, err)
	}
}

// A write that fails in a group fails alone: the others are made.
func TestPostgresFailedWriteDoesNotFailItsGroup(t *testing.T) {
	t.Parallel()
	// A trigger refuses one city, as a constraint would refuse a real
	// write.
	s, dsn, release, first := blockedPostgresStore(t, time.Minute, func(db *sql.DB) {
		for _, q := range []string{
			`CREATE FUNCTION refuse_nowhere() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN RAISE EXCEPTION 'no team plays in Nowhere'; END $$`,
			`CREATE TRIGGER refuse_nowhere BEFORE INSERT ON teams FOR EACH ROW
				WHEN (NEW.city = 'Nowhere') EXECUTE FUNCTION refuse_nowhere()`,
		} {
			if _, err := db.ExecContext(t.Context(), q); err != nil {
				t.Fatal(err)
			}
		}
	})
	refusedGroup(t, s, release, first)
	// The refused group made nothing: each write was made once, by its
	// retry (a group that had kept Apple and Banana, written before
	// Nowhere in key order, would leave them at rev 2).
	if revs := overCities(t, dsn, `SELECT coalesce(sum(rev), 0) FROM teams WHERE city_key = ANY($1)`, "Apple", "Banana"); revs != 2 {
		t.Errorf("Apple and Banana revisions add up to %d, want 1 each", revs)
	}
}

// The group's connection, lost (the database restarted it, a network
// dropped it), costs no write: the group that finds it gone is retried
// through the pool, and the next group connects again.
func TestPostgresGroupConnectionLostIsReplaced(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	s := openPostgres(t, dsn)
	t.Cleanup(func() { _ = s.Close() })
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	groupConns := func() (n int) {
		if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1`, sqlstore.GroupApplicationName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	put := func(city string) {
		t.Helper()
		if _, _, err := s.Put(t.Context(), teams.Team{City: city, Nickname: "Nick " + city}); err != nil {
			t.Fatalf("Put %s: %v", city, err)
		}
		if got, err := s.Get(t.Context(), city); err != nil || got.Nickname != "Nick "+city {
			t.Fatalf("Get %s = %+v, %v", city, got, err)
		}
	}
	put("Before")
	if n := groupConns(); n != 1 {
		t.Fatalf("%d group connections after a write, want 1", n)
	}
	var killed int
	if err := db.QueryRowContext(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`, sqlstore.GroupApplicationName).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d group connections (%v), want 1", killed, err)
	}
	until(t, "the group's connection to end", func() bool { return groupConns() == 0 })
	put("During") // its group finds the connection gone
	put("After")  // its group connects again
	if n := groupConns(); n != 1 {
		t.Errorf("%d group connections after the lost one, want 1 again", n)
	}
}

// lostAnswerStore opens a store on a new database through a proxy that
// can lose the server's answers (pgtest.Proxy.Sever); a first write has
// connected the group's session and prepared its statements. It returns
// the store, the database's own DSN and the proxy.
func lostAnswerStore(t *testing.T, opts ...sqlstore.Option) (*sqlstore.Store, string, *pgtest.Proxy) {
	t.Helper()
	dsn := pgtest.Database(t)
	px := pgtest.NewProxy(t, dsn, "")
	s := openPostgres(t, px.DSN(), opts...)
	t.Cleanup(func() { _ = s.Close() })
	if _, _, err := s.Put(t.Context(), teams.Team{City: "Warm", Nickname: "Ups"}); err != nil {
		t.Fatal(err)
	}
	return s, dsn, px
}

// putAnswerLost makes a Put of city while the proxy loses the group
// session's answer that carries marker (freezing with it, if asked), and
// checks that an answer was lost.
func putAnswerLost(t *testing.T, s *sqlstore.Store, px *pgtest.Proxy, city, marker string, freeze bool) (teams.Team, bool, error) {
	t.Helper()
	severed := px.Sever(sqlstore.GroupApplicationName, []byte(marker), freeze)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	got, created, err := s.Put(ctx, teams.Team{City: city, Nickname: "Nick " + city})
	select {
	case <-severed:
	default:
		t.Fatalf("the group's session sent no answer carrying %q", marker)
	}
	return got, created, err
}

// writtenOnce checks that city's row was written by exactly one write.
func writtenOnce(t *testing.T, dsn, city string) {
	t.Helper()
	if rev := overCities(t, dsn, `SELECT coalesce(sum(rev), 0) FROM teams WHERE city_key = ANY($1)`, city); rev != 1 {
		t.Errorf("%s's row is at rev %d, want 1: written once", city, rev)
	}
}

// createdOnce checks that a Put of city (with putAnswerLost's nickname)
// answered that it created the team, and that its row was written once.
func createdOnce(t *testing.T, dsn, city string, got teams.Team, created bool, err error) {
	t.Helper()
	if err != nil || !created || got.Nickname != "Nick "+city {
		t.Errorf("Put %s = %+v, created %v, %v; want it created", city, got, created, err)
	}
	writtenOnce(t, dsn, city)
}

// The answer to a group's upserts lost with its connection: its COMMIT
// was never sent, so nothing was made, and the write is retried and made
// once. (With the upserts and the commit in one round trip, this answer
// came after the commit, and the retry made the write a second time.)
func TestPostgresGroupAnswerLostBeforeCommit(t *testing.T) {
	t.Parallel()
	s, dsn, px := lostAnswerStore(t)
	got, created, err := putAnswerLost(t, s, px, "Early", "INSERT 0 1\x00", false)
	createdOnce(t, dsn, "Early", got, created, err)
}

// The answer to a group's COMMIT lost with its connection: the group
// learns on a new one that the transaction committed, and answers with
// what its upserts returned; nothing is made twice.
func TestPostgresGroupCommitAnswerLost(t *testing.T) {
	t.Parallel()
	s, dsn, px := lostAnswerStore(t)
	got, created, err := putAnswerLost(t, s, px, "Late", "COMMIT\x00", false)
	createdOnce(t, dsn, "Late", got, created, err)
	if _, created, err := s.Put(t.Context(), teams.Team{City: "Late", Nickname: "Again"}); err != nil || created {
		t.Errorf("the next Put of Late = created %v, %v; want an update", created, err)
	}
}

// The answer to a group's COMMIT lost, and the database out of reach for
// a while (as in a restart): the group asks again until it can learn the
// outcome.
func TestPostgresGroupCommitSettledOnceReachable(t *testing.T) {
	t.Parallel()
	s, dsn, px := lostAnswerStore(t)
	severed := px.Sever(sqlstore.GroupApplicationName, []byte("COMMIT\x00"), true)
	go func() {
		<-severed
		time.Sleep(time.Second)
		px.Freeze(false)
	}()
	got, created, err := s.Put(t.Context(), teams.Team{City: "Patient", Nickname: "Nick Patient"})
	createdOnce(t, dsn, "Patient", got, created, err)
}

// The answer to a group's COMMIT lost, and the database out of reach
// while the group tries to learn the outcome: the write fails as
// unavailable, saying it may have been made, and is not retried (it had
// committed, so a retry would have made it twice).
func TestPostgresGroupCommitUnsettled(t *testing.T) {
	t.Parallel()
	s, dsn, px := lostAnswerStore(t, sqlstore.WithSettleWithin(1500*time.Millisecond))
	_, _, err := putAnswerLost(t, s, px, "Unknown", "COMMIT\x00", true)
	if !errors.Is(err, teams.ErrUnavailable) || !errors.Is(err, teams.ErrMaybeMade) {
		t.Errorf("Put with the COMMIT's answer lost and no way to learn the outcome = %v, want unavailable, maybe made", err)
	}
	px.Freeze(false)
	writtenOnce(t, dsn, "Unknown")

	// Through TeamsService: UNAVAILABLE, with a message that says so.
	severed := px.Sever(sqlstore.GroupApplicationName, []byte("COMMIT\x00"), true)
	h := teams.NewHandler(s, "token")
	req := connect.NewRequest(&teamsv1.PutTeamRequest{City: "Unknown Too", Nickname: "Nick"})
	req.Header().Set("Authorization", "Bearer token")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = h.PutTeam(ctx, req)
	select {
	case <-severed:
	default:
		t.Fatal("the group's session sent no COMMIT answer")
	}
	if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "the write may have been made") {
		t.Errorf("PutTeam with the outcome unknown = %v, want unavailable, saying the write may have been made", err)
	}
	px.Freeze(false)
	writtenOnce(t, dsn, "Unknown Too")
	if _, _, err := s.Put(t.Context(), teams.Team{City: "After", Nickname: "Thaw"}); err != nil {
		t.Errorf("Put once the database is back: %v", err)
	}
}

// The group's COMMIT lost on its way, with the client's side of the
// connection, while the database still waits for it: the transaction is
// in progress, so the group ends that session, learns that it did not
// commit, and retries the write, which is made once.
func TestPostgresGroupCommitLostOnItsWay(t *testing.T) {
	t.Parallel()
	s, dsn, px := lostAnswerStore(t)
	lost := px.LoseRequest(sqlstore.GroupApplicationName, []byte("COMMIT\x00"))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	got, created, err := s.Put(ctx, teams.Team{City: "Adrift", Nickname: "Nick Adrift"})
	select {
	case <-lost:
	default:
		t.Fatal("the group's session sent no COMMIT")
	}
	createdOnce(t, dsn, "Adrift", got, created, err)
}

// A replica cut off from the database between its group's upserts and
// their COMMIT (a network partition): PostgreSQL keeps the session, idle
// in its transaction with the group's rows locked, until it notices the
// connection is dead, which with the default TCP keepalive takes hours.
// Meanwhile every other replica's write of those teams waits. The group's
// session is ended after a short idle_in_transaction_session_timeout
// instead: the rows are free again within seconds, and the other write is
// made.
func TestPostgresGroupPartitionedHoldsNoRows(t *testing.T) {
	t.Parallel()
	s, dsn, px := lostAnswerStore(t, sqlstore.WithSettleWithin(time.Second))
	if _, _, err := s.Put(t.Context(), teams.Team{City: "Cut Off", Nickname: "Before"}); err != nil {
		t.Fatal(err)
	}
	other := openPostgres(t, dsn) // another replica, not cut off
	t.Cleanup(func() { _ = other.Close() })
	cut := px.Partition(sqlstore.GroupApplicationName, []byte("COMMIT\x00"))
	t.Cleanup(func() { px.Freeze(false) })
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		_, _, _ = s.Put(ctx, teams.Team{City: "Cut Off", Nickname: "Cut"})
	}()
	select {
	case <-cut:
	case <-time.After(10 * time.Second):
		t.Fatal("the group's session sent no COMMIT")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	got, _, err := other.Put(ctx, teams.Team{City: "Cut Off", Nickname: "Other"})
	if err != nil || got.Nickname != "Other" {
		t.Fatalf("another replica's write of a team whose row the cut-off replica's transaction held: %v, %v after %v; the row stays locked for as long as the partition", got, err, time.Since(start).Round(time.Millisecond))
	}
	t.Logf("the other replica's write was made %v after the partition began", time.Since(start).Round(time.Millisecond))
}

// A replica cut off from PostgreSQL (a partition: nothing answers and
// nothing is refused): a read whose caller set no deadline, as grpcurl's
// calls have none, is UNAVAILABLE once the store's read bound passes,
// rather than held for as long as TCP retransmits (about 15 minutes); a
// caller's own sooner deadline stays its own.
func TestPostgresReadPartitioned(t *testing.T) {
	t.Parallel()
	s, _, px := lostAnswerStore(t, sqlstore.WithTimeout(time.Second))
	px.Freeze(true)
	t.Cleanup(func() { px.Freeze(false) })
	reads := []struct {
		name string
		read func(context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := s.Get(ctx, "Warm"); return err }},
		{"List", func(ctx context.Context) error { _, _, err := s.List(ctx, teams.ListOptions{}); return err }},
	}
	for _, r := range reads {
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- r.read(t.Context()) }()
		select {
		case err := <-done:
			if !errors.Is(err, teams.ErrUnavailable) {
				t.Errorf("%s of a cut-off store: %v after %v, want ErrUnavailable", r.name, err, time.Since(start).Round(time.Millisecond))
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s of a cut-off store, with no deadline, still waiting after 30 s", r.name)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Get(ctx, "Warm"); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, teams.ErrUnavailable) {
		t.Errorf("Get of a cut-off store under a 200 ms deadline: %v, want the caller's deadline exceeded", err)
	}
}

// within runs call, with no deadline of its own, and fails the test if it
// has not returned after limit; it returns call's error.
func within(t *testing.T, what string, limit time.Duration, call func(context.Context) error) error {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- call(t.Context()) }()
	select {
	case err := <-done:
		t.Logf("%s: %v after %v", what, err, time.Since(start).Round(time.Millisecond))
		return err
	case <-time.After(limit):
		t.Fatalf("%s, with no deadline, still waiting after %v", what, limit)
		return nil
	}
}

// wantMaybeMade checks that a write that outlived the store's bound is
// UNAVAILABLE, saying it may have been made.
func wantMaybeMade(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, teams.ErrUnavailable) || !errors.Is(err, teams.ErrMaybeMade) {
		t.Errorf("%s: %v, want unavailable, maybe made", what, err)
	}
}

// A replica cut off from PostgreSQL (a partition: nothing answers and
// nothing is refused): a write whose caller set no deadline is
// UNAVAILABLE once the store's bound passes, saying it may have been
// made, rather than held (and every write queued behind it) for as long
// as TCP retransmits, about 15 minutes: with the group's session
// connected (its batch unanswered), with it to connect again (its connect
// gives up, and the retry through the pool waits for a dial), and a
// Delete. Once the partition heals nothing was made twice.
func TestPostgresWritePartitioned(t *testing.T) {
	t.Parallel()
	s, dsn, px := lostAnswerStore(t, sqlstore.WithTimeout(time.Second))
	cold := openPostgres(t, px.DSN(), sqlstore.WithTimeout(time.Second)) // its group never connected
	t.Cleanup(func() { _ = cold.Close() })
	px.Freeze(true)
	t.Cleanup(func() { px.Freeze(false) })
	err := within(t, "Put of a cut-off store", 30*time.Second, func(ctx context.Context) error {
		_, _, err := s.Put(ctx, teams.Team{City: "Cut Off", Nickname: "Nick Cut Off"})
		return err
	})
	wantMaybeMade(t, "Put of a cut-off store", err)
	err = within(t, "Put of a cut-off store whose group must connect", 30*time.Second, func(ctx context.Context) error {
		_, _, err := cold.Put(ctx, teams.Team{City: "Cold", Nickname: "Nick Cold"})
		return err
	})
	wantMaybeMade(t, "Put of a cut-off store whose group must connect", err)
	err = within(t, "Delete of a cut-off store", 30*time.Second, func(ctx context.Context) error {
		_, err := s.Delete(ctx, "Warm")
		return err
	})
	wantMaybeMade(t, "Delete of a cut-off store", err)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := s.Put(ctx, teams.Team{City: "Cut Off", Nickname: "Soon"}); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, teams.ErrUnavailable) {
		t.Errorf("Put of a cut-off store under a 200 ms deadline: %v, want the caller's deadline exceeded", err)
	}

	px.Freeze(false)
	for _, c := range []string{"Cut Off", "Cold"} {
		if rev := overCities(t, dsn, `SELECT coalesce(sum(rev), 0) FROM teams WHERE city_key = ANY($1)`, c); rev > 1 {
			t.Errorf("%s's row is at rev %d after the partition: written more than once", c, rev)
		}
	}
	for _, st := range []*sqlstore.Store{s, cold} {
		if _, _, err := st.Put(t.Context(), teams.Team{City: "Healed", Nickname: "Nick Healed"}); err != nil {
			t.Errorf("Put once the partition healed: %v", err)
		}
	}
}

// The teams table locked by another session (an operator's LOCK TABLE, a
// migration's ALTER TABLE): a write whose caller set no deadline is
// UNAVAILABLE once the store's bound passes, saying it may have been
// made, rather than waiting for as long as the lock is held.
func TestPostgresWriteTableLocked(t *testing.T) {
	t.Parallel()
	dsn := pgtest.Database(t)
	s := openPostgres(t, dsn, sqlstore.WithTimeout(time.Second))
	t.Cleanup(func() { _ = s.Close() })
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	if _, err := tx.ExecContext(t.Context(), `LOCK TABLE teams IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	err = within(t, "Put with the table locked", 30*time.Second, func(ctx context.Context) error {
		_, _, err := s.Put(ctx, teams.Team{City: "Locked Out", Nickname: "Nick"})
		return err
	})
	wantMaybeMade(t, "Put with the table locked", err)
	err = within(t, "Delete with the table locked", 30*time.Second, func(ctx context.Context) error {
		_, err := s.Delete(ctx, "Chicago")
		return err
	})
	wantMaybeMade(t, "Delete with the table locked", err)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// pgx cancels a statement it stops waiting for, which here reaches
	// the database: the writes were most likely not made, but a cancel
	// can come after the lock was granted.
	if rev := overCities(t, dsn, `SELECT coalesce(sum(rev), 0) FROM teams WHERE city_key = ANY($1)`, "Locked Out"); rev > 1 {
		t.Errorf("Locked Out's row is at rev %d: written more than once", rev)
	}
	if _, _, err := s.Put(t.Context(), teams.Team{City: "Locked Out", Nickname: "Nick"}); err != nil {
		t.Errorf("Put once the lock is released: %v", err)
	}
}
