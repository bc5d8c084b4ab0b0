package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// until polls cond until it holds, failing the test after 10 s.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
	}
}

// lockedStore opens a store on a new directory, runs setup on it, has
// another store take its write lock, and starts a first Put ("First"), which waits for the
// lock; more Puts then queue behind it. It returns the store, the
// release of the lock and the first Put's outcome.
func lockedStore(t *testing.T, setup func(dir string)) (s *sqlstore.Store, dir string, unlock func(), first <-chan error) {
	t.Helper()
	dir = t.TempDir()
	s, other := openSQLite(t, dir), openSQLite(t, dir)
	t.Cleanup(func() { _ = s.Close(); _ = other.Close() })
	if setup != nil {
		setup(dir)
	}
	unlock, err := other.LockForTest(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unlock)
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Put(t.Context(), teams.Team{City: "First", Nickname: "Ones"})
		done <- err
	}()
	// Taken, and its caller past the queue (it leaves it after the
	// handover).
	until(t, "the first Put to be taken", func() bool { w, _, q := s.GroupStats(); return w == 1 && q == 0 })
	return s, dir, unlock, done
}

// putAll starts a Put for each city, on a store whose writer is busy and
// whose queue was empty, waits until they all queue, and returns a wait
// for their outcomes by city.
func putAll(t *testing.T, s *sqlstore.Store, cities ...string) func() map[string]error {
	t.Helper()
	type outcome struct {
		city string
		err  error
	}
	done := make(chan outcome, len(cities))
	for _, c := range cities {
		go func() {
			_, _, err := s.Put(t.Context(), teams.Team{City: c, Nickname: "Nick " + c})
			done <- outcome{c, err}
		}()
	}
	until(t, "the Puts to queue", func() bool {
		w, c, q := s.GroupStats()
		if q != int64(len(cities)) {
			select {
			case o := <-done:
				t.Fatalf("Put %s ended (%v) while the store was locked: %d writes, %d commits, %d queued", o.city, o.err, w, c, q)
			default:
			}
			return false
		}
		return true
	})
	return func() map[string]error {
		got := map[string]error{}
		for range cities {
			o := <-done
			got[o.city] = o.err
		}
		return got
	}
}

func TestSQLiteWritesArrivingTogetherShareACommit(t *testing.T) {
	t.Parallel()
	s, _, unlock, first := lockedStore(t, nil)
	var cities []string
	for i := range 20 {
		cities = append(cities, fmt.Sprintf("Group %d", i))
	}
	wait := putAll(t, s, cities...)
	unlock()
	if err := <-first; err != nil {
		t.Fatalf("first Put: %v", err)
	}
	for c, err := range wait() {
		if err != nil {
			t.Errorf("Put %s: %v", c, err)
		}
	}
	writes, commits, _ := s.GroupStats()
	// The first write commits alone; the 20 that queued while it waited
	// share one commit (three would still be grouping; 21 would not be).
	if writes != 21 || commits > 3 {
		t.Errorf("%d writes in %d commits, want 21 in at most 3", writes, commits)
	}
	for _, c := range cities {
		if got, err := s.Get(t.Context(), c); err != nil || got.Nickname != "Nick "+c {
			t.Errorf("Get %s after a grouped Put = %+v, %v", c, got, err)
		}
	}
}

// A write that fails in a group fails alone: the others are made.
func TestSQLiteFailedWriteDoesNotFailItsGroup(t *testing.T) {
	t.Parallel()
	s, _, unlock, first := lockedStore(t, func(dir string) {
		// A trigger refuses one city, as a constraint or a full disk
		// would refuse a real write.
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlstore.SQLiteFile))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.ExecContext(t.Context(), `CREATE TRIGGER refuse_nowhere BEFORE INSERT ON teams
			WHEN NEW.city = 'Nowhere' BEGIN SELECT RAISE(ABORT, 'no team plays in Nowhere'); END`); err != nil {
			t.Fatal(err)
		}
	})
	refusedGroup(t, s, unlock, first)
	// The group's transaction was rolled back and each write retried on
	// its own: 1 + 3 commits.
	if writes, commits, _ := s.GroupStats(); writes != 4 || commits != 4 {
		t.Errorf("%d writes in %d commits, want 4 in 4", writes, commits)
	}
}

// refusedGroup queues writes of Apple, Nowhere (which a trigger of the
// database refuses) and Banana behind first, a write that waits until
// unblock is called, and checks that only Nowhere's fails.
func refusedGroup(t *testing.T, s *sqlstore.Store, unblock func(), first <-chan error) {
	t.Helper()
	wait := putAll(t, s, "Apple", "Nowhere", "Banana")
	unblock()
	if err := <-first; err != nil {
		t.Fatalf("first Put: %v", err)
	}
	got := wait()
	if err := got["Nowhere"]; err == nil || !strings.Contains(err.Error(), "no team plays in Nowhere") {
		t.Errorf("refused Put = %v, want the trigger's error", err)
	}
	for _, c := range []string{"Apple", "Banana"} {
		if got[c] != nil {
			t.Errorf("Put %s beside a refused write: %v", c, got[c])
		}
		if team, err := s.Get(t.Context(), c); err != nil || team.Nickname != "Nick "+c {
			t.Errorf("Get %s = %+v, %v", c, team, err)
		}
	}
	if _, err := s.Get(t.Context(), "Nowhere"); !errors.Is(err, teams.ErrNotFound) {
		t.Errorf("Get of the refused city = %v, want not found", err)
	}
}

// A caller that gives up while its write waits to be taken returns at
// once, and its write is not made.
func TestSQLiteWriteAbandonedInTheQueueIsNotMade(t *testing.T) {
	t.Parallel()
	s, _, unlock, first := lockedStore(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Put(ctx, teams.Team{City: "Gone", Nickname: "Leavers"})
		done <- err
	}()
	until(t, "the Put to queue", func() bool { _, _, q := s.GroupStats(); return q == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("abandoned Put = %v, want context.Canceled", err)
	}
	unlock()
	if err := <-first; err != nil {
		t.Fatalf("first Put: %v", err)
	}
	if _, err := s.Get(t.Context(), "Gone"); !errors.Is(err, teams.ErrNotFound) {
		t.Errorf("Get of the abandoned write = %v, want not found", err)
	}
	if writes, _, queued := s.GroupStats(); writes != 1 || queued != 0 {
		t.Errorf("after the abandoned Put: %d writes taken, %d queued; want 1 and 0", writes, queued)
	}
}

// Close ends the writer: a later Put fails with a clear error instead of
// hanging.
func TestSQLitePutAfterClose(t *testing.T) {
	t.Parallel()
	s := openSQLite(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(t.Context(), teams.Team{City: "Late", Nickname: "Comers"}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Put after Close = %v, want an error saying the store is closed", err)
	}
}
