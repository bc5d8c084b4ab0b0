package teams

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// The cache's rules, each in a test whose steps are ordered by hooks (a
// Get stopped after its store read, a wait until a Change is taken), so
// each outcome is exact rather than a matter of timing. The process-level
// tests of the same rules, on SQLite and PostgreSQL, are in e2e/scale.

// testStore is a MemStore whose Gets are counted, and whose feed is either
// the MemStore's (every write reported at once) or, when silent, one the
// test drives by hand (writes reported only when the test says). A silent
// feed with echoes (echoStore) gets the Local reports of the store's
// writes; their echoes, the source's, come when the test says.
type testStore struct {
	*MemStore
	feed *Feed
	gets atomic.Int64
	// beforeRead, when set, runs in each Get before the store is read;
	// beforeWrite in each Put and Delete before the store is written, and
	// afterWrite after it is written, before the write is reported.
	beforeRead, beforeWrite, afterWrite func(city string)
}

func newTestStore(silent bool) *testStore {
	s := &testStore{MemStore: NewMemStore(TutorialTeams)}
	s.feed = s.MemStore.Feed()
	if silent {
		s.feed = NewFeed(true)
	}
	return s
}

func (s *testStore) Get(ctx context.Context, city string) (Team, error) {
	s.gets.Add(1)
	if s.beforeRead != nil {
		s.beforeRead(city)
	}
	return s.MemStore.Get(ctx, city)
}

// echoStore is a testStore whose silent feed has echoes.
func echoStore() *testStore {
	s := newTestStore(true)
	s.feed = NewEchoFeed(true)
	return s
}

func (s *testStore) Put(ctx context.Context, t Team) (Team, bool, error) {
	if s.beforeWrite != nil {
		s.beforeWrite(t.City)
	}
	stored, created, err := s.MemStore.Put(ctx, t)
	s.wrote(CityKey(t.City), stored, true, err == nil)
	return stored, created, err
}

func (s *testStore) Delete(ctx context.Context, city string) (Team, error) {
	if s.beforeWrite != nil {
		s.beforeWrite(city)
	}
	t, err := s.MemStore.Delete(ctx, city)
	s.wrote(CityKey(city), Team{}, false, err == nil)
	return t, err
}

// wrote runs afterWrite, and reports a write that happened (ok) as it
// committed on a feed with echoes (Local), as sqlstore does.
func (s *testStore) wrote(key string, t Team, found, ok bool) {
	if s.afterWrite != nil {
		s.afterWrite(key)
	}
	if ok && s.feed.Echoes() {
		s.feed.ReportLocal(Wrote(key, t, found))
	}
}

func (s *testStore) Feed() *Feed { return s.feed }

// live is the Change ch as a live feed delivers it.
func live(ch Change) Change {
	ch.Live = true
	return ch
}

// harness is a cache on a testStore with its hooks wired to the test.
type harness struct {
	t       *testing.T
	store   *testStore
	cache   *Cache
	applied chan Change
	// The next Get of stopKey stops after its store read: the test
	// receives on stopped, then closes resume (one stop per harness).
	stopKey atomic.Value // string
	stopped chan struct{}
	resume  chan struct{}
}

func newHarness(t *testing.T, silent bool, bound int) *harness {
	return newHarnessOn(t, newTestStore(silent), bound, nil)
}

// newHarnessOn is a harness on store; now, when set, is the cache's clock.
func newHarnessOn(t *testing.T, store *testStore, bound int, now func() int64) *harness {
	h := &harness{t: t, store: store, applied: make(chan Change, 64),
		stopped: make(chan struct{}), resume: make(chan struct{})}
	h.stopKey.Store("")
	hooks := &cacheHooks{
		read: func(key string) {
			if h.stopKey.CompareAndSwap(key, "") {
				h.stopped <- struct{}{}
				<-h.resume
			}
		},
		applied: func(ch Change) { h.applied <- ch },
		now:     now,
	}
	h.cache = newCache(h.store, bound, slog.New(slog.NewTextHandler(io.Discard, nil)), hooks)
	t.Cleanup(func() { _ = h.cache.Close() })
	h.taken(Change{All: true, Live: true}) // the subscription's first Change
	return h
}

// taken waits until the cache has taken want.
func (h *harness) taken(want Change) {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ch := <-h.applied:
			if ch == want {
				return
			}
		case <-deadline:
			h.t.Fatalf("the cache did not take %+v within 5s", want)
		}
	}
}

func (h *harness) get(city string) (Team, error) {
	return h.cache.Get(context.Background(), city)
}

// want checks that Get(city) answers nickname ("" for ErrNotFound), and
// whether it read the store to do so.
func (h *harness) want(city, nickname string, readsStore bool) {
	h.t.Helper()
	before := h.store.gets.Load()
	got, err := h.get(city)
	switch {
	case nickname == "" && !errors.Is(err, ErrNotFound):
		h.t.Errorf("Get(%s) = %+v, %v; want ErrNotFound", city, got, err)
	case nickname != "" && (err != nil || got.Nickname != nickname):
		h.t.Errorf("Get(%s) = %+v, %v; want %s", city, got, err, nickname)
	}
	if read := h.store.gets.Load() > before; read != readsStore {
		h.t.Errorf("Get(%s) read the store: %v, want %v", city, read, readsStore)
	}
}

// startStoppedGet starts a Get of city that stops after its store read,
// and returns its result channel once it has read.
func (h *harness) startStoppedGet(city string) <-chan Team {
	h.stopKey.Store(CityKey(city))
	out := make(chan Team, 1)
	go func() {
		t, _ := h.get(city)
		out <- t
	}()
	<-h.stopped
	return out
}

// A fill that read a team before a Change for its key was taken must not
// install it: the team deleted meanwhile never comes back.
func TestCacheFillRacingChangeIsNotKept(t *testing.T) {
	t.Parallel()
	h := newHarness(t, false, 16)
	got := h.startStoppedGet("Boston")
	if _, err := h.store.MemStore.Delete(context.Background(), "Boston"); err != nil { // reported by the feed only
		t.Fatal(err)
	}
	h.taken(live(Wrote("boston", Team{}, false)))
	close(h.resume)
	if tm := <-got; tm.Nickname != "Revolutionaries" {
		t.Errorf("the read that overlapped the delete answered %+v", tm)
	}
	h.want("Boston", "", true)
	h.want("Boston", "", false) // and that answer is kept
	if st := h.cache.Stats(); st.Stale != 1 {
		t.Errorf("Stale = %d, want 1", st.Stale)
	}
}

// The same with a Change for every key (All), as after a feed's outage.
func TestCacheFillRacingAllIsNotKept(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true, 16)
	got := h.startStoppedGet("Boston")
	if _, err := h.store.MemStore.Delete(context.Background(), "Boston"); err != nil {
		t.Fatal(err)
	}
	h.store.feed.Reset(true)
	h.taken(Change{All: true, Live: true})
	close(h.resume)
	<-got
	h.want("Boston", "", true)
}

// A fill of another key is kept: a Change drops only its own key.
func TestCacheFillOfAnotherKeyIsKept(t *testing.T) {
	t.Parallel()
	h := newHarness(t, false, 16)
	got := h.startStoppedGet("Boston")
	if _, _, err := h.store.MemStore.Put(context.Background(), Team{City: "Chicago", Nickname: "Bears"}); err != nil {
		t.Fatal(err)
	}
	h.taken(live(Wrote("chicago", Team{City: "Chicago", Nickname: "Bears"}, true)))
	close(h.resume)
	<-got
	h.want("Boston", "Revolutionaries", false)
}

// This process's acknowledged write is seen by its next Get, though the
// feed has not reported it (its feed here is silent): Put and Delete keep
// the state they wrote, and void a fill of the key in progress.
func TestCacheOwnWriteSeenAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true, 16)
	ctx := context.Background()
	h.want("Chicago", "Jackals", true)
	h.want("Chicago", "Jackals", false)
	if _, _, err := h.cache.Put(ctx, Team{City: "chicago", Nickname: "Bears"}); err != nil {
		t.Fatal(err)
	}
	h.want("Chicago", "Bears", false)
	if _, err := h.cache.Delete(ctx, "CHICAGO"); err != nil {
		t.Fatal(err)
	}
	h.want("Chicago", "", false)
	// Deleting a city with no team leaves it with none too.
	if _, err := h.cache.Delete(ctx, "Atlantis"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete(Atlantis) = %v", err)
	}
	h.want("Atlantis", "", false)

	// A fill that read before the write is not kept; the write is.
	got := h.startStoppedGet("Detroit")
	if _, _, err := h.cache.Put(ctx, Team{City: "Detroit", Nickname: "Motors"}); err != nil {
		t.Fatal(err)
	}
	close(h.resume)
	if tm := <-got; tm.Nickname != "Wheels" {
		t.Errorf("the read that overlapped the write answered %+v", tm)
	}
	h.want("Detroit", "Motors", false)
	if st := h.cache.Stats(); st.Writes != 4 || st.WritesKept != 4 || st.Stale != 1 {
		t.Errorf("Stats = %+v; want 4 writes kept, 1 stale fill", st)
	}

	// A failed write keeps nothing: it may or may not have happened.
	if _, _, err := h.cache.Put(ctx, Team{City: "Detroit", Nickname: ""}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Put with no nickname = %v", err)
	}
	h.want("Detroit", "Motors", true)
}

// A Change whose state is the one kept (the echo of a write already
// seen) keeps it; a Change of another state, or of an unknown one, drops it.
func TestCacheKeepsWhatAChangeConfirms(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true, 16)
	h.want("Chicago", "Jackals", true)
	h.want("Atlantis", "", true)
	h.store.feed.Report(Wrote("chicago", Team{City: "Chicago", Nickname: "Jackals"}, true))
	h.taken(live(Wrote("chicago", Team{City: "Chicago", Nickname: "Jackals"}, true)))
	h.store.feed.Report(Wrote("atlantis", Team{}, false))
	h.taken(live(Wrote("atlantis", Team{}, false)))
	h.want("Chicago", "Jackals", false)
	h.want("Atlantis", "", false)
	if st := h.cache.Stats(); st.Confirmed != 2 {
		t.Errorf("Confirmed = %d, want 2", st.Confirmed)
	}

	// The store changed behind the silent feed; its Changes drop the keys.
	if _, _, err := h.store.MemStore.Put(context.Background(), Team{City: "Chicago", Nickname: "Bears"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.store.MemStore.Put(context.Background(), Team{City: "Atlantis", Nickname: "Tridents"}); err != nil {
		t.Fatal(err)
	}
	h.store.feed.Report(Wrote("chicago", Team{City: "Chicago", Nickname: "Bears"}, true))
	h.taken(live(Wrote("chicago", Team{City: "Chicago", Nickname: "Bears"}, true)))
	h.store.feed.Changed("atlantis")
	h.taken(Change{Key: "atlantis", Live: true})
	h.want("Chicago", "Bears", true)
	h.want("Atlantis", "Tridents", true)
}

// A fill is kept when every Change of its key taken while it read had the
// state it read, and not when one had another.
func TestCacheFillAndItsKeysChanges(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		changes []Change
		kept    bool
	}{
		{"the state it read", []Change{Wrote("boston", Team{City: "Boston", Nickname: "Revolutionaries"}, true)}, true},
		{"the same state twice", []Change{
			Wrote("boston", Team{City: "Boston", Nickname: "Revolutionaries"}, true),
			Wrote("boston", Team{City: "Boston", Nickname: "Revolutionaries"}, true)}, true},
		{"another state", []Change{Wrote("boston", Team{City: "Boston", Nickname: "Minutemen"}, true)}, false},
		{"a delete", []Change{Wrote("boston", Team{}, false)}, false},
		{"an unknown state", []Change{{Key: "boston"}}, false},
		{"its state after another", []Change{
			Wrote("boston", Team{City: "Boston", Nickname: "Minutemen"}, true),
			Wrote("boston", Team{City: "Boston", Nickname: "Revolutionaries"}, true)}, false},
		// The first Change stops later misses joining the read: the
		// Changes after it still reach the read.
		{"another state after its own", []Change{
			Wrote("boston", Team{City: "Boston", Nickname: "Revolutionaries"}, true),
			Wrote("boston", Team{City: "Boston", Nickname: "Minutemen"}, true)}, false},
		{"a delete after its own state", []Change{
			Wrote("boston", Team{City: "Boston", Nickname: "Revolutionaries"}, true),
			Wrote("boston", Team{}, false)}, false},
		{"an unknown state after its own", []Change{
			Wrote("boston", Team{City: "Boston", Nickname: "Revolutionaries"}, true),
			{Key: "boston"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, true, 16)
			got := h.startStoppedGet("Boston")
			for _, ch := range tc.changes {
				h.store.feed.Report(ch)
				h.taken(live(ch))
			}
			close(h.resume)
			<-got
			h.want("Boston", "Revolutionaries", !tc.kept)
		})
	}
}

// A read that took a Change of its key (and so is no longer joined) is
// still voided by this process's own write of the key, and by the feed
// going down: it never overwrites the acknowledged write, and nothing is
// kept while the feed is down.
func TestCacheReadPastAChangeVoidedByWriteAndReset(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	same := Wrote("boston", Team{City: "Boston", Nickname: "Revolutionaries"}, true)
	t.Run("own write", func(t *testing.T) {
		t.Parallel()
		h := newHarnessOn(t, echoStore(), 16, nil)
		got := h.startStoppedGet("Boston")
		h.store.feed.Report(same)
		h.taken(live(same))
		if _, _, err := h.cache.Put(ctx, Team{City: "Boston", Nickname: "Bruins"}); err != nil {
			t.Fatal(err)
		}
		close(h.resume)
		<-got
		h.want("Boston", "Bruins", false)
	})
	t.Run("feed down", func(t *testing.T) {
		t.Parallel()
		h := newHarnessOn(t, echoStore(), 16, nil)
		got := h.startStoppedGet("Boston")
		h.store.feed.Report(same)
		h.taken(live(same))
		h.store.feed.Reset(false)
		h.taken(Change{All: true, Live: false})
		close(h.resume)
		<-got
		// Another process writes; with the feed down nobody is told.
		if _, _, err := h.store.MemStore.Put(ctx, Team{City: "Boston", Nickname: "Bruins"}); err != nil {
			t.Fatal(err)
		}
		h.want("Boston", "Bruins", true)
		if n := h.cache.Stats().Entries; n != 0 {
			t.Errorf("%d entries kept while the feed is down", n)
		}
	})
}

// An own write is kept only when nothing said otherwise while it wrote:
// not when another state of its key was reported meanwhile, not when
// another Put or Delete of its key by this process overlapped it, and not
// while the feed is down.
func TestCacheOwnWriteNotKept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// stopWrites makes the next writes of the harness stop before they
	// write, each announcing itself on the channel returned, until the
	// test closes release.
	stopWrites := func(h *harness) (entered chan string, release chan struct{}) {
		entered, release = make(chan string, 2), make(chan struct{})
		h.store.beforeWrite = func(city string) {
			entered <- city
			<-release
		}
		return entered, release
	}

	t.Run("another state reported", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, true, 16)
		entered, release := stopWrites(h)
		done := make(chan error, 1)
		go func() {
			_, _, err := h.cache.Put(ctx, Team{City: "Seattle", Nickname: "Sounders"})
			done <- err
		}()
		<-entered
		// Another process's write, before this one's.
		h.store.feed.Report(Wrote("seattle", Team{City: "Seattle", Nickname: "Kraken"}, true))
		h.taken(live(Wrote("seattle", Team{City: "Seattle", Nickname: "Kraken"}, true)))
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		h.want("Seattle", "Sounders", true)
		if st := h.cache.Stats(); st.Writes != 1 || st.WritesKept != 0 {
			t.Errorf("Stats = %+v; want a write not kept", st)
		}
	})

	t.Run("own writes overlapping", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, true, 16)
		entered, release := stopWrites(h)
		done := make(chan error, 2)
		go func() {
			_, _, err := h.cache.Put(ctx, Team{City: "Seattle", Nickname: "Sounders"})
			done <- err
		}()
		go func() {
			_, err := h.cache.Delete(ctx, "seattle")
			done <- err
		}()
		<-entered
		<-entered
		close(release)
		for range 2 {
			if err := <-done; err != nil && !errors.Is(err, ErrNotFound) {
				t.Fatal(err)
			}
		}
		before := h.store.gets.Load()
		_, _ = h.get("Seattle")
		if h.store.gets.Load() == before {
			t.Error("after two overlapping writes of Seattle the cache kept one")
		}
		if st := h.cache.Stats(); st.Writes != 2 || st.WritesKept != 0 {
			t.Errorf("Stats = %+v; want 2 writes, none kept", st)
		}
	})

	t.Run("feed down", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, true, 16)
		h.store.feed.Reset(false)
		h.taken(Change{All: true, Live: false})
		if _, _, err := h.cache.Put(ctx, Team{City: "Seattle", Nickname: "Sounders"}); err != nil {
			t.Fatal(err)
		}
		h.want("Seattle", "Sounders", true)
		if st := h.cache.Stats(); st.Entries != 0 || st.WritesKept != 0 {
			t.Errorf("Stats = %+v; want nothing kept while down", st)
		}
	})
}

// "No team here" answers are kept and dropped by the same rules.
// A hit of an ASCII city allocates nothing (its key is not made), and
// cities beyond ASCII are kept and found by CityKey all the same.
func TestCacheHitKeys(t *testing.T) {
	h := newHarness(t, false, 16)
	h.want(" chicago ", "Jackals", true)
	if n := testing.AllocsPerRun(100, func() { _, _ = h.get("CHICAGO") }); n != 0 {
		t.Errorf("a hit: %v allocations, want 0", n)
	}
	h.want("Chicago", "Jackals", false)
	if _, _, err := h.store.Put(context.Background(), Team{City: "São Paulo", Nickname: "Saci"}); err != nil {
		t.Fatal(err)
	}
	h.want("são paulo", "Saci", true)
	h.want(" SãO PAULO", "Saci", false)
	h.want("Zürich", "", true)
	h.want("ZÜRICH ", "", false)
}

func TestCacheNotFoundKeptAndDropped(t *testing.T) {
	t.Parallel()
	h := newHarness(t, false, 16)
	h.want("Atlantis", "", true)
	h.want(" atlantis ", "", false)
	if _, _, err := h.store.MemStore.Put(context.Background(), Team{City: "Atlantis", Nickname: "Tridents"}); err != nil {
		t.Fatal(err)
	}
	h.taken(live(Wrote("atlantis", Team{City: "Atlantis", Nickname: "Tridents"}, true)))
	h.want("Atlantis", "Tridents", true)
	h.want("Atlantis", "Tridents", false)
	if st := h.cache.Stats(); st.HitsNotFound != 1 || st.Hits != 2 {
		t.Errorf("Stats = %+v; want 1 of 2 hits not found", st)
	}
}

// While the feed is not live every Get reads the store and nothing is
// kept; a fill in progress when it goes down is not kept either; once it
// is live again the cache fills anew.
func TestCacheReadsThroughWhileDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true, 16)
	h.want("Seattle", "Orcas", true)
	got := h.startStoppedGet("Chicago")
	h.store.feed.Reset(false)
	h.taken(Change{All: true, Live: false})
	close(h.resume)
	<-got
	if _, _, err := h.store.MemStore.Put(context.Background(), Team{City: "Seattle", Nickname: "Sounders"}); err != nil {
		t.Fatal(err) // not reported: the feed is down
	}
	for range 3 {
		h.want("Seattle", "Sounders", true)
		h.want("Chicago", "Jackals", true)
	}
	if st := h.cache.Stats(); st.Entries != 0 || st.Live || st.Down != 6 {
		t.Errorf("Stats while down = %+v; want nothing kept, 6 reads through", st)
	}
	// A Change of one key while down does not make the cache live.
	h.store.feed.Changed("seattle")
	h.taken(Change{Key: "seattle", Live: false})
	h.want("Seattle", "Sounders", true)
	h.store.feed.Reset(true)
	h.taken(Change{All: true, Live: true})
	h.want("Seattle", "Sounders", true)
	h.want("Seattle", "Sounders", false)
}

// List always reads the store. Here the feed is silent, so the cache
// keeps Chicago's old team while the store has the new one.
func TestCacheListReadsTheStore(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true, 16)
	h.want("Chicago", "Jackals", true)
	if _, _, err := h.store.MemStore.Put(context.Background(), Team{City: "Chicago", Nickname: "Bears"}); err != nil {
		t.Fatal(err)
	}
	h.want("Chicago", "Jackals", false)
	list, _, err := h.cache.List(context.Background(), ListOptions{Prefix: "chi"})
	if err != nil || len(list) != 1 || list[0].Nickname != "Bears" {
		t.Errorf("List(chi) = %v, %v; want the store's Chicago Bears", list, err)
	}
}

// However many keys are read, at most the bound's entries are kept.
func TestCacheBound(t *testing.T) {
	t.Parallel()
	h := newHarness(t, false, 4)
	for i := range 100 {
		h.want(fmt.Sprintf("Nowhere %d", i), "", true)
		if n := h.cache.Stats().Entries; n > 4 {
			t.Fatalf("%d entries after %d reads, bound 4", n, i+1)
		}
	}
	for _, tm := range TutorialTeams {
		h.want(tm.City, tm.Nickname, true)
	}
	if st := h.cache.Stats(); st.Entries != 4 || st.Evictions != 100+10-4 {
		t.Errorf("Stats = %+v; want 4 entries, 106 evictions", st)
	}
}

// Misses of one key in flight together share one store read; one that
// joins a read which failed (its caller's context ended) reads for itself.
func TestCacheMissesShareARead(t *testing.T) {
	t.Parallel()
	h := newHarness(t, false, 16)
	first := h.startStoppedGet("Detroit")
	second := make(chan Team, 1)
	go func() {
		tm, _ := h.get("Detroit")
		second <- tm
	}()
	waitJoined(t, h.cache)
	close(h.resume)
	if a, b := <-first, <-second; a.Nickname != "Wheels" || b != a {
		t.Errorf("answers %+v and %+v", a, b)
	}
	if n := h.store.gets.Load(); n != 1 {
		t.Errorf("%d store reads for two concurrent misses, want 1", n)
	}

	// The leader's context ends while it reads: the one that joined is
	// not failed with the leader's error but reads for itself.
	h2 := newHarness(t, false, 16)
	entered, release := make(chan struct{}), make(chan struct{})
	h2.store.beforeRead = func(string) {
		entered <- struct{}{}
		<-release
	}
	ctx, cancel := context.WithCancel(context.Background())
	failed := make(chan error, 1)
	go func() {
		_, err := h2.cache.Get(ctx, "Seattle")
		failed <- err
	}()
	<-entered
	joined := make(chan error, 1)
	go func() {
		tm, err := h2.get("Seattle")
		if err == nil && tm.Nickname != "Orcas" {
			err = fmt.Errorf("got %+v", tm)
		}
		joined <- err
	}()
	waitJoined(t, h2.cache)
	cancel()
	close(release)
	select {
	case <-entered: // the joined caller's own read
	case err := <-joined:
		t.Fatalf("the Get that joined a failed read did not read for itself: %v", err)
	}
	if err := <-failed; !errors.Is(err, context.Canceled) {
		t.Errorf("the leader whose context ended got %v", err)
	}
	if err := <-joined; err != nil {
		t.Errorf("a Get that joined a failed read: %v", err)
	}
}

// A Get that begins after the cache took a Change of its key does not
// join a read that began before it: another process deletes Detroit while
// a miss's read (which found the team) is held, and a Get begun after the
// delete's Change reads anew and finds no team, and the held read does
// not install its answer.
func TestCacheNoJoinAcrossAChange(t *testing.T) {
	t.Parallel()
	h := newHarness(t, true, 16)
	first := h.startStoppedGet("Detroit") // read "Wheels", held before its install
	if _, err := h.store.MemStore.Delete(context.Background(), "Detroit"); err != nil {
		t.Fatal(err)
	}
	ch := Wrote("detroit", Team{}, false)
	h.store.feed.Report(ch)
	h.taken(live(ch))
	second := make(chan error, 1)
	go func() {
		tm, err := h.get("Detroit")
		if err == nil {
			err = fmt.Errorf("answered %+v", tm)
		}
		second <- err
	}()
	select {
	case err := <-second:
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Get begun after the delete's Change: %v, want ErrNotFound", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Get begun after the delete's Change waited for the read begun before it")
	}
	close(h.resume)
	if tm := <-first; tm.Nickname != "Wheels" {
		t.Errorf("the held read answered %+v, want what it read (Wheels)", tm)
	}
	if _, err := h.get("Detroit"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after both: %v, want ErrNotFound (the held read installed its answer)", err)
	}
	if j := h.cache.Stats().Joined; j != 0 {
		t.Errorf("%d Gets joined a read", j)
	}
}

// waitJoined waits until a Get has joined another's read, or fails.
func waitJoined(t *testing.T, c *Cache) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); c.Stats().Joined == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no Get joined the read in progress of its key")
		}
	}
}

// A canceled call fails, hit or miss, as on every store.
func TestCacheCanceledContext(t *testing.T) {
	t.Parallel()
	h := newHarness(t, false, 16)
	h.want("Chicago", "Jackals", true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.cache.Get(ctx, "Chicago"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context = %v", err)
	}
}

// On a confirming feed the cache serves what it kept only while the last
// confirmation is recent: a process that did not run for longer (stopped,
// starved) reads the store, without keeping what it read, until the feed
// confirms again, and what came meanwhile is applied first.
func TestCacheServesOnlyWhatAConfirmationCovers(t *testing.T) {
	t.Parallel()
	store := newTestStore(true)
	store.feed.SetConfirming()
	var clock atomic.Int64
	h := newHarnessOn(t, store, 16, clock.Load)
	confirm := func() {
		t.Helper()
		asOf := h.cache.epoch.Add(time.Duration(clock.Load()))
		store.feed.Confirm(asOf)
		h.taken(Change{Live: true, AsOf: asOf})
	}
	confirm()
	h.want("Boston", "Revolutionaries", true)
	h.want("Boston", "Revolutionaries", false)
	clock.Add(int64(ConfirmedWithin) - 1)
	h.want("Boston", "Revolutionaries", false)

	// The process stops; another deletes the team, its Change not yet
	// taken when this process runs again.
	clock.Add(2)
	if _, err := store.MemStore.Delete(context.Background(), "Boston"); err != nil {
		t.Fatal(err)
	}
	h.want("Boston", "", true)
	h.want("Boston", "", true) // not kept
	if st := h.cache.Stats(); st.Unconfirmed != 2 || st.Hits != 2 {
		t.Errorf("unconfirmed %d, hits %d; want 2 and 2", st.Unconfirmed, st.Hits)
	}
	// The source catches up: the Change, then the confirmation.
	ch := Wrote("boston", Team{}, false)
	store.feed.Report(ch)
	h.taken(live(ch))
	confirm()
	h.want("Boston", "", true)
	h.want("Boston", "", false)
}
