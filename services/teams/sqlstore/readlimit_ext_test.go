package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// openLooking opens a SQLite store whose read pool looks for waiting reads
// every looks (0: only when the test calls LookAtReads).
func openLooking(t *testing.T, looks time.Duration) *sqlstore.Store {
	t.Helper()
	s := openSQLite(t, t.TempDir(), sqlstore.WithReadLooks(looks), sqlstore.WithLogger(quietLogger(t)))
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func readLimit(s *sqlstore.Store) int { return s.ReadPool().Stats().MaxOpenConnections }

// The first misses of a starting server arrive together, one read for
// each team asked (misses of one team share a read). They wait for the
// pool's first connections instead of opening one each: every SQLite
// connection's memory stays with the process once opened.
func TestSQLiteReadPoolStaysSmallThroughTheFirstMisses(t *testing.T) {
	t.Parallel()
	s := openLooking(t, 0)
	first, _ := sqlstore.ReadConns()
	c := teams.NewCache(s, 64, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer func() { _ = c.Close() }()
	until(t, "the cache follows a live feed", func() bool { return c.Stats().Live })
	if got := readLimit(s); got != first {
		t.Fatalf("read pool limit %d at the start, want %d", got, first)
	}

	var cities []string
	want := map[string]string{}
	for _, tm := range teams.TutorialTeams {
		cities = append(cities, tm.City)
		want[tm.City] = tm.Nickname
	}
	for i := range 10 {
		cities = append(cities, fmt.Sprintf("Nowhere %d", i))
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(cities))
	for i := range 8 * len(cities) {
		city := cities[i%len(cities)]
		wg.Go(func() {
			<-start
			tm, err := c.Get(t.Context(), city)
			switch nick, known := want[city]; {
			case known && (err != nil || tm.Nickname != nick):
				errs <- fmt.Errorf("Get(%q) = %+v, %v; want %s", city, tm, err, nick)
			case !known && !errors.Is(err, teams.ErrNotFound):
				errs <- fmt.Errorf("Get(%q) = %+v, %v; want not found", city, tm, err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := c.Stats(); st.Misses > uint64(len(cities)) {
		t.Errorf("%d misses for %d cities: misses of one city did not share a read", st.Misses, len(cities))
	}
	if open := s.ReadPool().Stats().OpenConnections; open > first {
		t.Errorf("the burst opened %d read connections, want at most %d", open, first)
	}
	// The burst was over before a second look: the limit stays.
	s.LookAtReads()
	s.LookAtReads()
	if got := readLimit(s); got != first {
		t.Errorf("read pool limit %d after a burst, want %d", got, first)
	}
}

// The limit doubles, up to the most, each time reads have waited for a
// connection at three looks in a row; a look that finds none starts the
// count again.
func TestSQLiteReadPoolGrowsWhileReadsWait(t *testing.T) {
	t.Parallel()
	s := openLooking(t, 0)
	pool := s.ReadPool()
	first, most := sqlstore.ReadConns()
	ctx := t.Context()

	// busy holds n connections of the pool, opening them as the limit allows.
	var held []*sql.Conn
	busy := func(n int) {
		t.Helper()
		for len(held) < n {
			c, err := pool.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
	}
	// wait starts a Get that waits for a connection.
	var reads []chan error
	wait := func() {
		t.Helper()
		before := pool.Stats().WaitCount
		done := make(chan error, 1)
		reads = append(reads, done)
		go func() {
			_, err := s.Get(ctx, "Chicago")
			done <- err
		}()
		until(t, "a read waits for a connection", func() bool { return pool.Stats().WaitCount > before })
	}
	look := func(waits bool, want int) {
		t.Helper()
		if waits {
			wait()
		}
		s.LookAtReads()
		if got := readLimit(s); got != want {
			t.Fatalf("read pool limit %d, want %d", got, want)
		}
	}

	busy(first)
	look(true, first)
	look(true, first)
	look(false, first) // the count starts again
	for limit := first; limit < most; {
		busy(limit) // every connection busy: the next read waits
		look(true, limit)
		look(true, limit)
		limit = min(2*limit, most)
		look(true, limit)
	}
	if s.LookAtReads() {
		t.Errorf("LookAtReads at the most (%d) says the limit can grow", most)
	}
	busy(most) // the pool opens them all
	for _, c := range held {
		_ = c.Close()
	}
	for _, done := range reads {
		if err := <-done; err != nil {
			t.Errorf("a read that waited: %v", err)
		}
	}
}

// With the store's own looks, reads that keep every connection busy (the
// cache off, say) get the most connections within a few looks.
func TestSQLiteReadPoolGrowsUnderLoad(t *testing.T) {
	t.Parallel()
	s := openLooking(t, 10*time.Millisecond)
	first, most := sqlstore.ReadConns()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	errs := make(chan error, 2*most)
	for range 2 * most {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := s.Get(ctx, "Chicago"); err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		})
	}
	until(t, "the read pool grows to its most", func() bool { return readLimit(s) == most || len(errs) > 0 })
	until(t, "the reads open more connections", func() bool {
		return s.ReadPool().Stats().OpenConnections > first || len(errs) > 0
	})
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
