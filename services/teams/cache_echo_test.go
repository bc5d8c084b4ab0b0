package teams

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// The cache on a feed with echoes (sqlstore's): the store reports its own
// writes at once, marked Local, and its source reports every write again
// in commit order. The feeds here are driven by hand, so each order of
// reports is exact.

// local is ch as the store reports its own write as it commits.
func local(ch Change) Change {
	ch.Local = true
	return ch
}

// otherWrite is another process's write of ch's team: the store holds it,
// and the source reports it, as the cache has now taken.
func (h *harness) otherWrite(ch Change) {
	h.t.Helper()
	if _, _, err := h.store.MemStore.Put(context.Background(), ch.Team); err != nil {
		h.t.Fatal(err)
	}
	h.store.feed.Report(ch)
	h.taken(live(ch))
}

// The echo of this process's older write, arriving after a newer write
// was kept, committed before that write: it leaves the newer state kept.
// The newer write's echo confirms it, and from there a change of another
// state drops it. The store's Local reports are passed over: the writes
// through the cache apply themselves, and a write past the cache is seen
// when its echo comes, as another process's is.
func TestCacheLateEchoKeepsNewerWrite(t *testing.T) {
	t.Parallel()
	h := newHarnessOn(t, echoStore(), 16, nil)
	ctx := context.Background()
	gone := Wrote("chicago", Team{}, false)
	bears := Wrote("chicago", Team{City: "Chicago", Nickname: "Bears"}, true)
	cubs := Wrote("chicago", Team{City: "Chicago", Nickname: "Cubs"}, true)
	if _, err := h.cache.Delete(ctx, "Chicago"); err != nil {
		t.Fatal(err)
	}
	h.taken(live(local(gone)))
	for _, ch := range []Change{bears, cubs} {
		if _, _, err := h.cache.Put(ctx, ch.Team); err != nil {
			t.Fatal(err)
		}
		h.taken(live(local(ch)))
	}
	h.want("Chicago", "Cubs", false)
	// The echoes of the delete and of Bears: older than Cubs.
	for _, ch := range []Change{gone, bears} {
		h.store.feed.Report(ch)
		h.taken(live(ch))
		h.want("Chicago", "Cubs", false)
	}
	h.store.feed.Report(cubs)
	h.taken(live(cubs))
	h.want("Chicago", "Cubs", false)

	fire := Wrote("chicago", Team{City: "Chicago", Nickname: "Fire"}, true)
	if _, _, err := h.store.Put(ctx, fire.Team); err != nil { // past the cache
		t.Fatal(err)
	}
	h.taken(live(local(fire)))
	h.store.feed.Report(fire)
	h.taken(live(fire))
	h.want("Chicago", "Fire", true)
	h.want("Chicago", "Fire", false)
	if st := h.cache.Stats(); st.Own != 4 || st.Older != 2 || st.Confirmed != 1 || st.WritesKept != 3 || st.Misses != 1 {
		t.Errorf("Stats = %+v; want 4 own reports and 2 older changes passed over, 1 confirmed, 3 writes kept, 1 miss", st)
	}
}

// The Changes of its key a write takes while it writes, on a feed with
// echoes: those before the write's echo (the first of its state)
// committed before it and do not stop it being kept; every one after the
// echo must have its state.
func TestCacheWriteAndItsEchoes(t *testing.T) {
	t.Parallel()
	const key = "seattle"
	sounders := Wrote(key, Team{City: "Seattle", Nickname: "Sounders"}, true)
	kraken := Wrote(key, Team{City: "Seattle", Nickname: "Kraken"}, true)
	unknown := Change{Key: key}
	many := make([]Change, maxTakenByWrite+1)
	for i := range many {
		many[i] = kraken
	}
	for _, tc := range []struct {
		name    string
		changes []Change
		// newer: the last change is a write after this one, which the
		// store holds when read.
		newer bool
		kept  bool
	}{
		{"an older state", []Change{kraken}, false, true},
		{"an older unknown state", []Change{unknown}, false, true},
		{"an older state, then the echo", []Change{kraken, sounders}, false, true},
		{"the echo twice", []Change{sounders, sounders}, false, true},
		{"the echo, then another state", []Change{sounders, kraken}, true, false},
		{"the echo, then an unknown state", []Change{sounders, unknown}, false, false},
		{"more changes than a write collects", many, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarnessOn(t, echoStore(), 16, nil)
			h.store.afterWrite = func(string) {
				if tc.newer {
					if _, _, err := h.store.MemStore.Put(context.Background(), tc.changes[len(tc.changes)-1].Team); err != nil {
						t.Error(err)
					}
				}
				for _, ch := range tc.changes {
					h.store.feed.Report(ch)
					h.taken(live(ch))
				}
			}
			if _, _, err := h.cache.Put(context.Background(), sounders.Team); err != nil {
				t.Fatal(err)
			}
			want := "Sounders"
			if tc.newer {
				want = "Kraken"
			}
			h.want("Seattle", want, !tc.kept)
			if st := h.cache.Stats(); (st.WritesKept == 1) != tc.kept {
				t.Errorf("Stats = %+v; want the write kept: %v", st, tc.kept)
			}
		})
	}
}

// An echo not come within FeedBound of its write's start: until then the
// key's changes of other states are passed over; from then the next Get
// reads the store, and a change of another state drops the entry.
func TestCacheEchoOverdue(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	h := newHarnessOn(t, echoStore(), 16, clock.Load)
	ctx := context.Background()
	bears := Team{City: "Chicago", Nickname: "Bears"}
	if _, _, err := h.cache.Put(ctx, bears); err != nil {
		t.Fatal(err)
	}
	clock.Store(int64(FeedBound) - 1)
	older := Wrote("chicago", Team{City: "Chicago", Nickname: "Jackals"}, true)
	h.store.feed.Report(older)
	h.taken(live(older))
	h.want("Chicago", "Bears", false)
	clock.Store(int64(FeedBound))
	h.want("Chicago", "Bears", true)
	h.want("Chicago", "Bears", false) // the read's answer is kept
	if st := h.cache.Stats(); st.EchoesLate != 1 || st.Older != 1 {
		t.Errorf("Stats = %+v; want 1 late echo, 1 older change passed over", st)
	}

	cubs := Team{City: "Chicago", Nickname: "Cubs"}
	if _, _, err := h.cache.Put(ctx, cubs); err != nil { // due at 2×FeedBound
		t.Fatal(err)
	}
	h.want("Chicago", "Cubs", false)
	clock.Store(2 * int64(FeedBound))
	h.otherWrite(Wrote("chicago", Team{City: "Chicago", Nickname: "Fire"}, true))
	h.want("Chicago", "Fire", true)
	if st := h.cache.Stats(); st.Older != 1 {
		t.Errorf("Stats = %+v; a change after the echo was due was passed over", st)
	}
}

// On a feed without echoes (MemStore's) a store's report of its own
// write is its only report: nothing is marked Local, and the cache takes
// the report as any change.
func TestCacheWithoutEchoes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, false, 16)
	if h.store.Feed().Echoes() {
		t.Fatal("a MemStore's feed has echoes")
	}
	bears := Wrote("chicago", Team{City: "Chicago", Nickname: "Bears"}, true)
	if _, _, err := h.store.Put(context.Background(), bears.Team); err != nil { // past the cache
		t.Fatal(err)
	}
	h.taken(live(bears))
	h.want("Chicago", "Bears", true)
	if st := h.cache.Stats(); st.Own != 0 {
		t.Errorf("Stats = %+v; want no report passed over", st)
	}
}

// A Delete that found no team changed nothing, so no echo of it comes: a
// change after it is not passed over as older. (Another process created
// the team once the Delete had looked.)
func TestCacheDeleteOfNothingAwaitsNoEcho(t *testing.T) {
	t.Parallel()
	h := newHarnessOn(t, echoStore(), 16, nil)
	ctx := context.Background()
	if _, err := h.cache.Delete(ctx, "Atlantis"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete(Atlantis) = %v", err)
	}
	h.want("Atlantis", "", false)
	h.otherWrite(Wrote("atlantis", Team{City: "Atlantis", Nickname: "Tridents"}, true))
	h.want("Atlantis", "Tridents", true)
	if st := h.cache.Stats(); st.Older != 0 || st.Own != 0 {
		t.Errorf("Stats = %+v; want nothing passed over", st)
	}
}

// A Change of a key this process is writing — most often the write's own
// echo, which can reach the feed before the store returns — leaves the
// entry for at most WriteHold: a Get then overlaps the write and is
// answered with the state before it, and the write replaces the entry as
// it ends. Past the hold, a Get reads the store.
func TestCacheChangeDuringOwnWrite(t *testing.T) {
	t.Parallel()
	for _, echoes := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain feed", true: "feed with echoes"}[echoes], func(t *testing.T) {
			t.Parallel()
			store := newTestStore(true)
			if echoes {
				store = echoStore()
			}
			var clock atomic.Int64
			h := newHarnessOn(t, store, 16, clock.Load)
			h.want("Chicago", "Jackals", true)
			bears := Wrote("chicago", Team{City: "Chicago", Nickname: "Bears"}, true)
			h.store.afterWrite = func(string) {
				h.store.feed.Report(bears)
				h.taken(live(bears))
				h.want("Chicago", "Jackals", false)
				clock.Add(int64(WriteHold) - 1)
				h.want("Chicago", "Jackals", false)
				clock.Add(1)
				h.want("Chicago", "Bears", true)
			}
			if _, _, err := h.cache.Put(context.Background(), bears.Team); err != nil {
				t.Fatal(err)
			}
			h.want("Chicago", "Bears", false)
			if st := h.cache.Stats(); st.Held != 1 || st.HoldsLate != 1 || st.WritesKept != 1 {
				t.Errorf("Stats = %+v; want 1 change held, 1 hold late, the write kept", st)
			}
		})
	}
}
