package teams

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func next(t *testing.T, s *Subscription) Change {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return c
}

// Each subscriber gets every change in the order reported, starting with an
// All that carries the feed's state; Reset carries the new state.
func TestFeedOrderAndState(t *testing.T) {
	f := NewFeed(false)
	a := f.Subscribe()
	f.Reset(true)
	b := f.Subscribe()
	for i := range 100 {
		f.Changed(fmt.Sprint(i))
	}
	f.Reset(false)
	f.Changed("while down")
	want := []Change{{All: true}, {All: true, Live: true}}
	for i := range 100 {
		want = append(want, Change{Key: fmt.Sprint(i), Live: true})
	}
	want = append(want, Change{All: true}, Change{Key: "while down"})
	for name, s := range map[string]*Subscription{"a": a, "b": b} {
		w := want
		if name == "b" { // subscribed when live: starts with one live All
			w = want[1:]
		}
		for i, wc := range w {
			if got := next(t, s); got != wc {
				t.Fatalf("%s: change %d = %+v, want %+v", name, i, got, wc)
			}
		}
	}
	if st := f.Stats(); st.Live || st.Outages != 1 || st.Changes != 101 || st.Subscribers != 2 {
		t.Errorf("Stats = %+v", st)
	}
}

// A store's report of its own write is marked Local on a feed with echoes
// only; a source's report never is, whatever the Change said.
func TestFeedLocalReports(t *testing.T) {
	for _, echoes := range []bool{false, true} {
		f := NewFeed(true)
		if echoes {
			f = NewEchoFeed(true)
		}
		if f.Echoes() != echoes {
			t.Fatalf("Echoes() = %v, want %v", f.Echoes(), echoes)
		}
		s := f.Subscribe()
		next(t, s)
		ch := Wrote("k", Team{City: "K", Nickname: "N"}, true)
		f.ReportLocal(ch)
		ch.Local = true
		f.Report(ch)
		got := []Change{next(t, s), next(t, s)}
		if got[0].Local != echoes || got[1].Local {
			t.Errorf("echoes %v: ReportLocal, then Report of a Local change, delivered Local %v, %v", echoes, got[0].Local, got[1].Local)
		}
		if st := f.Stats(); st.Changes != 2 {
			t.Errorf("echoes %v: Stats = %+v, want 2 changes", echoes, st)
		}
	}
}

// A subscriber that falls behind by more than the queue's bound gets one
// All (with the current state) instead of the backlog, then what follows.
func TestFeedOverflowCollapsesToAll(t *testing.T) {
	f := NewFeed(true)
	s := f.Subscribe()
	for i := range maxQueued + 10 {
		f.Changed(fmt.Sprint(i))
	}
	s.feed.mu.Lock()
	n := len(s.queue)
	s.feed.mu.Unlock()
	if n > maxQueued {
		t.Errorf("%d changes queued, bound %d", n, maxQueued)
	}
	sawAll := false
	for range n {
		c := next(t, s)
		sawAll = sawAll || c.All
		if c.Key == fmt.Sprint(maxQueued+9) && !sawAll {
			t.Fatal("the last change arrived without an All covering the dropped ones")
		}
	}
	if !sawAll || f.Stats().Overflows == 0 {
		t.Error("no All after an overflow")
	}
}

// Next waits for a change, honours its context, and ends with
// ErrFeedClosed after the feed closes, once the queue is drained.
func TestFeedNextWaitsAndCloses(t *testing.T) {
	f := NewFeed(true)
	s := f.Subscribe()
	next(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with nothing queued = %v, want DeadlineExceeded", err)
	}
	go func() {
		time.Sleep(10 * time.Millisecond)
		f.Changed("x")
	}()
	if c := next(t, s); c.Key != "x" {
		t.Fatalf("got %+v", c)
	}
	f.Changed("y")
	f.Close()
	if c := next(t, s); c.Key != "y" {
		t.Fatalf("got %+v, want the change queued before Close", c)
	}
	if c := next(t, s); !c.All || c.Live {
		t.Fatalf("got %+v, want All, not live, from Close", c)
	}
	if _, err := s.Next(context.Background()); !errors.Is(err, ErrFeedClosed) {
		t.Fatalf("Next after Close = %v", err)
	}
	if _, err := f.Subscribe().Next(context.Background()); !errors.Is(err, ErrFeedClosed) {
		t.Fatalf("Next of a subscription to a closed feed = %v", err)
	}
}

// Confirmations reach only the subscriptions that take them (a Cache's),
// each newer than the last and while the feed is live; Reset(true)
// confirms its own time and Reset(false) forgets the last one.
func TestFeedConfirmations(t *testing.T) {
	t.Parallel()
	f := NewEchoFeed(false)
	f.SetConfirming()
	plain, confirmed := f.Subscribe(), f.subscribe(true)
	defer plain.Close()
	defer confirmed.Close()
	next := func(s *Subscription) Change {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, s := range []*Subscription{plain, confirmed} {
		if c := next(s); c != (Change{All: true}) {
			t.Errorf("first Change %+v", c)
		}
	}
	f.Confirm(time.Now()) // down: nothing confirmed
	before := time.Now()
	f.Reset(true)
	if c := next(plain); c != (Change{All: true, Live: true}) {
		t.Errorf("plain: Reset(true) gave %+v", c)
	}
	reset := next(confirmed)
	if !reset.All || !reset.Live || reset.AsOf.Before(before) {
		t.Errorf("confirmed: Reset(true) gave %+v, want AsOf after %v", reset, before)
	}
	f.Confirm(reset.AsOf.Add(-time.Millisecond)) // older: ignored
	asOf := reset.AsOf.Add(time.Millisecond)
	f.Confirm(asOf)
	f.Report(Wrote("boston", Team{}, false))
	if c := next(confirmed); c != (Change{Live: true, AsOf: asOf}) {
		t.Errorf("confirmed: Confirm gave %+v", c)
	}
	for _, s := range []*Subscription{plain, confirmed} {
		if c := next(s); c != live(Wrote("boston", Team{}, false)) {
			t.Errorf("after the confirmation: %+v", c)
		}
	}
	f.Reset(false)
	if c := next(confirmed); c != (Change{All: true}) {
		t.Errorf("confirmed: Reset(false) gave %+v", c)
	}
	f.Confirm(time.Now()) // down again: nothing confirmed
	f.Report(Wrote("chicago", Team{}, false))
	if c := next(confirmed); c != (Change{Key: "chicago", Known: true}) {
		t.Errorf("confirmed, down: %+v", c)
	}
}
