package teams

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// DefaultCacheEntries is the default bound of a Cache: teams and "no team
// here" answers kept in memory. An entry holds three strings of at most
// MaxNameLength characters (the key, the city, the nickname): about
// 1.3 KiB at worst, some 100 bytes for a tutorial team, so the default
// bounds the cache to about 5 MiB whatever the store holds.
const DefaultCacheEntries = 4096

// WriteHold is how long an entry outlives a Change of its key taken while
// this process writes that key: the write drops or replaces the entry as
// it ends, before it is acknowledged, and until then a Get overlaps the
// write and may be answered with the state before it. Most such Changes
// are the write's own echo, which can reach the feed before the store
// returns. A write not ended within WriteHold voids the entry at its next
// Get. (The sources deliver within 3 intervals, at most 750 ms, so a
// Change held is still served within FeedBound of its write.)
const WriteHold = 100 * time.Millisecond

// CacheReportEvery is how often a Cache logs its counters while it serves
// reads (and once more when it closes).
const CacheReportEvery = time.Minute

// Cache is a Store that answers Get from memory. It follows its store's
// change feed by the feed's rules (feed.go), so what it serves is never
// older than the feed's bound:
//
//   - a Change with a Key drops that key, unless the Change is Known and
//     the entry kept is its state (the echo of a write already seen); a
//     Change with All drops everything;
//   - on a feed with echoes (Feed.Echoes), whose source reports writes in
//     commit order, the store's Local reports of this process's writes
//     are passed over (Put and Delete apply them), and an entry a write
//     of this process left waits for that write's echo: until it comes,
//     the key's other Changes committed before the write and are passed
//     over too. An echo not come within FeedBound of the write's start
//     voids the entry at its next Get;
//   - a Change of a key this process is writing leaves its entry for at
//     most WriteHold: the write drops or replaces the entry as it ends;
//   - while the last Change taken had Live false, every Get reads the
//     store and nothing is kept;
//   - on a confirming feed (Feed.SetConfirming), while the last
//     confirmation taken (Change.AsOf) is older than ConfirmedWithin,
//     every Get reads the store: the process did not run, or its source
//     did not answer, for so long that Changes may be on their way;
//   - a Get that misses reads the store and keeps the answer — a team, or
//     ErrNotFound — only if every Change for its key taken while it read
//     was Known and had the state it read (and no All came): the read
//     registers itself and collects those Changes, so a value read before
//     a write is never installed after the write's Change (a deleted team
//     never comes back); a Put or Delete of its key by this process
//     voids every read of the key in progress as it ends;
//   - Put and Delete drop their key before they return, so this process's
//     acknowledged write is seen by its own next Get without waiting for
//     the feed; and they keep the state they wrote (a team, or none) by
//     the same rule as a fill — every Change for the key taken while they
//     wrote had that state, but for those before the write's echo on a
//     feed with echoes — and only if no other Put or Delete of the key by
//     this process overlapped theirs;
//   - List always reads the store;
//   - at most the bound's entries are kept; a fill beyond it evicts an
//     arbitrary other entry.
//
// Concurrent misses of one key share one store read (the first one's),
// so a write invalidating a hot team costs one read, not one per caller
// in flight. A caller joins only a read that no Change for its key has
// reached yet: one that arrives after the cache took a Change reads
// anew, and later callers share that read.
type Cache struct {
	store   Watchable
	bound   int
	echoes  bool // the store's feed has echoes
	sub     *Subscription
	logger  *slog.Logger
	stop    context.CancelFunc
	stopped chan struct{}
	epoch   time.Time // the cache's clock counts from here (now)

	confirming bool // the feed is a confirming one

	mu       sync.Mutex
	live     bool  // the last Change taken had Live set
	asOf     int64 // on the cache's clock, the last confirmation taken
	entries  map[string]cacheEntry
	inflight map[string]*cacheFill // misses reading the store that later misses join, by key
	// passed are the misses still reading the store that a Change of their
	// key has reached (and so no miss joins any more), by key: the key's
	// later Changes, writes and resets must reach them too.
	passed   map[string][]*cacheFill
	writing  map[string][]*cacheWrite // this process's Puts and Deletes in progress, by key
	stats    CacheStats               // counters; Entries, Bound and Live are filled in by Stats
	reported CacheStats               // at the last report

	// hooks order a test's steps; nil outside tests.
	hooks *cacheHooks
}

var _ Watchable = (*Cache)(nil)

// teamState is a key's state: a team, or (found false, team zero) none,
// which Get answers with ErrNotFound.
type teamState struct {
	team  Team
	found bool
}

// stateOf is the state a Known Change left.
func stateOf(ch Change) teamState {
	if !ch.Found {
		return teamState{}
	}
	return teamState{team: ch.Team, found: true}
}

// cacheEntry is a kept answer.
type cacheEntry struct {
	teamState
	// echoDue, when not zero, is the time on the cache's clock (now) by
	// which the echo of this process's write that left the entry is due;
	// until then the key's other Changes committed before that write. Zero
	// once the echo came, and for entries of reads.
	echoDue int64
	// holdDue, when not zero, is when a Change taken while this process
	// wrote the key voids the entry, should the write not have ended.
	holdDue int64
}

// seen is what a read or write of a key in progress learned of the key
// from the Changes taken meanwhile; guarded by Cache.mu.
type seen struct {
	// stale: a Change of unknown state, Changes of two states, or an All.
	stale bool
	// known: Changes were taken, each with this state.
	known bool
	state teamState
}

// take records ch, a Change of the key.
func (s *seen) take(ch Change) {
	switch {
	case !ch.Known:
		s.stale = true
	case !s.known:
		s.known, s.state = true, stateOf(ch)
	case s.state != stateOf(ch):
		s.stale = true
	}
}

// allows tells whether e may be kept: no Change taken meanwhile says
// anything else of the key.
func (s *seen) allows(e teamState) bool { return !s.stale && (!s.known || s.state == e) }

// cacheFill is one store read of a miss, shared by the misses of its key
// that arrive while it runs.
type cacheFill struct {
	done chan struct{} // closed once team and err are set
	team Team
	err  error
	seen seen
}

// answer is the state the read's answer would be; false when it failed.
func (f *cacheFill) answer() (teamState, bool) {
	switch {
	case f.err == nil:
		return teamState{team: f.team, found: true}, true
	case errors.Is(f.err, ErrNotFound):
		return teamState{}, true
	}
	return teamState{}, false
}

// maxTakenByWrite bounds the Changes a write in progress collects; a write
// that sees more keeps nothing.
const maxTakenByWrite = 8

// cacheWrite is one Put or Delete of this process in progress.
type cacheWrite struct {
	// due is when the write's echo is due: FeedBound after it began.
	due int64
	// stale: another write of the key by this process overlapped it, an
	// All was taken, or more than maxTakenByWrite Changes of the key.
	stale bool
	// taken are the Changes of the key taken while it wrote, in order.
	taken []Change
}

// take records ch, a Change of the key.
func (w *cacheWrite) take(ch Change) {
	if len(w.taken) == maxTakenByWrite {
		w.stale = true
		return
	}
	w.taken = append(w.taken, ch)
}

// keeps tells whether the state e the write left may be kept, and whether
// its echo is still to come. On a feed with echoes, the Changes taken
// before the first one with state e (the echo, or an older write of the
// same state) committed before the write, which overwrote them; every
// Change after it, and on another feed every Change, must have state e.
func (w *cacheWrite) keeps(e teamState, echoes bool) (keep, awaitEcho bool) {
	if w.stale {
		return false, false
	}
	rest := w.taken
	if echoes {
		i := 0
		for i < len(rest) && !(rest[i].Known && stateOf(rest[i]) == e) {
			i++
		}
		if i == len(rest) {
			return true, true
		}
		rest = rest[i+1:]
	}
	var after seen
	for _, ch := range rest {
		after.take(ch)
	}
	return after.allows(e), false
}

// cacheHooks let a test stop a Get between its steps.
type cacheHooks struct {
	// read runs after a miss's store read, before its answer is installed.
	read func(key string)
	// applied runs after a Change is taken.
	applied func(Change)
	// now, when set, is the cache's clock.
	now func() int64
}

// CacheStats are a Cache's counters, for logs and metrics.
type CacheStats struct {
	// Entries are the answers kept now, at most Bound.
	Entries, Bound int
	// Live is the cache's view of its feed: false while it reads through.
	Live bool
	// Hits counts Gets answered from memory (HitsNotFound of them with
	// ErrNotFound).
	Hits, HitsNotFound uint64
	// Misses counts Gets that read the store while the feed was live;
	// Joined counts Gets that shared another miss's read of their key.
	Misses, Joined uint64
	// Down counts Gets that read the store because the feed was not live;
	// Unconfirmed those that read it because the feed's last confirmation
	// was older than ConfirmedWithin.
	Down, Unconfirmed uint64
	// Stale counts misses whose answer was not kept because a Change for
	// their key, of another state, arrived while they read it.
	Stale uint64
	// Confirmed counts Changes that left an entry kept: their state was
	// the one kept (a write's echo).
	Confirmed uint64
	// Own counts the Local Changes passed over: the store's reports of
	// this process's own writes, which Put and Delete apply themselves.
	// Older counts Changes passed over because they came before the echo
	// of a write this process made and keeps: they committed before it.
	Own, Older uint64
	// EchoesLate counts entries a write kept that a Get found with the
	// write's echo not come within FeedBound: the Get read the store.
	EchoesLate uint64
	// Held counts Changes that left an entry in place, for at most
	// WriteHold, because this process was writing their key; HoldsLate
	// the entries a Get then found with the write not ended in time.
	Held, HoldsLate uint64
	// Evictions counts entries dropped to stay within Bound.
	Evictions uint64
	// Changes counts Changes taken from the feed (Resets of them with
	// All); Writes counts keys dropped by this process's own writes, and
	// WritesKept those of them whose written state was kept.
	Changes, Resets, Writes, WritesKept uint64
}

// Reads is every Get the cache answered.
func (s CacheStats) Reads() uint64 { return s.Hits + s.Misses + s.Joined + s.Down + s.Unconfirmed }

// HitRatio is the share of Gets answered from memory (0 with no Gets).
func (s CacheStats) HitRatio() float64 {
	if s.Reads() == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Reads())
}

// NewCache serves store's Get from at most entries answers in memory
// (entries must be positive: without a cache, use the store itself). Its
// counters are logged to logger (slog.Default if nil) at Info as "team
// cache" every CacheReportEvery while it serves, and when it closes.
// Closing the cache closes the store.
func NewCache(store Watchable, entries int, logger *slog.Logger) *Cache {
	return newCache(store, entries, logger, nil)
}

func newCache(store Watchable, entries int, logger *slog.Logger, hooks *cacheHooks) *Cache {
	if entries <= 0 {
		panic("teams: NewCache with no room for entries")
	}
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cache{
		store: store, bound: entries, echoes: store.Feed().Echoes(), confirming: store.Feed().Confirming(),
		logger: logger, stop: cancel, stopped: make(chan struct{}),
		epoch:   time.Now(),
		entries: map[string]cacheEntry{}, inflight: map[string]*cacheFill{}, passed: map[string][]*cacheFill{},
		writing: map[string][]*cacheWrite{}, hooks: hooks,
	}
	// The subscription's first Change (All, with the feed's state) sets
	// live; until it is taken the cache reads through.
	c.sub = store.Feed().subscribe(true)
	go c.follow(ctx)
	return c
}

// follow takes the feed's changes until the cache closes, and reports the
// counters now and then.
func (c *Cache) follow(ctx context.Context) {
	defer close(c.stopped)
	report := time.NewTicker(CacheReportEvery)
	defer report.Stop()
	// Next with a context already done takes what is queued without
	// waiting: the Ready token says "look", not how many are queued.
	polled, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case <-report.C:
			c.report(false)
		case <-c.sub.Ready():
			for {
				ch, err := c.sub.Next(polled)
				if errors.Is(err, ErrFeedClosed) {
					c.apply(Change{All: true, Live: false})
					return
				}
				if err != nil {
					break
				}
				c.apply(ch)
			}
		}
	}
}

// now is the cache's clock, in nanoseconds (monotonic).
func (c *Cache) now() int64 {
	if c.hooks != nil && c.hooks.now != nil {
		return c.hooks.now()
	}
	return int64(time.Since(c.epoch))
}

// apply takes one Change by the feed's rules.
func (c *Cache) apply(ch Change) {
	c.mu.Lock()
	if !ch.AsOf.IsZero() {
		c.asOf = max(c.asOf, int64(ch.AsOf.Sub(c.epoch)))
		if ch.Key == "" && !ch.All { // a confirmation, no more
			c.mu.Unlock()
			if c.hooks != nil && c.hooks.applied != nil {
				c.hooks.applied(ch)
			}
			return
		}
	}
	c.stats.Changes++
	c.live = ch.Live
	switch {
	case ch.All || !ch.Live:
		c.stats.Resets++
		clear(c.entries)
		for _, f := range c.inflight {
			f.seen.stale = true
		}
		clear(c.inflight)
		for _, fs := range c.passed {
			for _, f := range fs {
				f.seen.stale = true
			}
		}
		clear(c.passed)
		for _, ws := range c.writing {
			for _, w := range ws {
				w.stale = true
			}
		}
	case ch.Local && c.echoes:
		c.stats.Own++
	default:
		c.takeLocked(ch)
	}
	c.mu.Unlock()
	if c.hooks != nil && c.hooks.applied != nil {
		c.hooks.applied(ch)
	}
}

// takeLocked applies ch, a live Change of one key; c.mu is held.
func (c *Cache) takeLocked(ch Change) {
	if e, ok := c.entries[ch.Key]; ok {
		switch {
		case ch.Known && e.teamState == stateOf(ch):
			c.stats.Confirmed++
			if e.echoDue != 0 { // the echo (or an older write of that state)
				e.echoDue = 0
				c.entries[ch.Key] = e
			}
		case e.echoDue != 0 && c.now() < e.echoDue:
			c.stats.Older++
		case len(c.writing[ch.Key]) > 0:
			c.stats.Held++
			if e.holdDue == 0 {
				e.holdDue = c.now() + int64(WriteHold)
				c.entries[ch.Key] = e
			}
		default:
			delete(c.entries, ch.Key)
		}
	}
	for _, f := range c.passed[ch.Key] {
		f.seen.take(ch)
	}
	if f, ok := c.inflight[ch.Key]; ok {
		f.seen.take(ch)
		// Later misses read anew: this read may have begun before the
		// write, and a call that begins once the cache knows of a write
		// must not be answered from before it (a deleted team). The
		// read installs its answer still if the Changes it takes, this
		// one and every later one, allow.
		delete(c.inflight, ch.Key)
		c.passed[ch.Key] = append(c.passed[ch.Key], f)
	}
	for _, w := range c.writing[ch.Key] {
		w.take(ch)
	}
}

// dropLocked forgets key and voids the reads of it in progress; c.mu is
// held.
func (c *Cache) dropLocked(key string) {
	delete(c.entries, key)
	if f, ok := c.inflight[key]; ok {
		f.seen.stale = true
		delete(c.inflight, key)
	}
	for _, f := range c.passed[key] {
		f.seen.stale = true
	}
	delete(c.passed, key)
}

// endFillLocked stops following f, a read of key that has ended; c.mu is
// held.
func (c *Cache) endFillLocked(key string, f *cacheFill) {
	if c.inflight[key] == f {
		delete(c.inflight, key)
		return
	}
	fs := c.passed[key]
	if i := slices.Index(fs, f); i >= 0 {
		fs = slices.Delete(fs, i, i+1)
		if len(fs) == 0 {
			delete(c.passed, key)
		} else {
			c.passed[key] = fs
		}
	}
}

// Get implements Store.
func (c *Cache) Get(ctx context.Context, city string) (Team, error) {
	// A canceled call fails as it would on the store, hit or not.
	if err := ctx.Err(); err != nil {
		return Team{}, err
	}
	// The key of a hit is looked up without being allocated (most
	// cities are short ASCII); a miss makes the string it keeps.
	var buf [64]byte
	kb := appendCityKey(buf[:0], city)
	c.mu.Lock()
	if c.confirming && c.live && c.now()-c.asOf > int64(ConfirmedWithin) {
		c.stats.Unconfirmed++
		c.mu.Unlock()
		return c.store.Get(ctx, city)
	}
	if e, ok := c.entries[string(kb)]; ok && (e.echoDue == 0 && e.holdDue == 0 || c.inTime(string(kb), e)) {
		c.stats.Hits++
		if !e.found {
			c.stats.HitsNotFound++
			c.mu.Unlock()
			return Team{}, ErrNotFound
		}
		c.mu.Unlock()
		return e.team, nil
	}
	if !c.live {
		c.stats.Down++
		c.mu.Unlock()
		return c.store.Get(ctx, city)
	}
	if f, ok := c.inflight[string(kb)]; ok {
		c.stats.Joined++
		c.mu.Unlock()
		return c.join(ctx, f, city)
	}
	key := string(kb)
	f := &cacheFill{done: make(chan struct{})}
	c.inflight[key] = f
	c.stats.Misses++
	c.mu.Unlock()

	f.team, f.err = c.store.Get(ctx, city)
	if c.hooks != nil && c.hooks.read != nil {
		c.hooks.read(key)
	}
	c.mu.Lock()
	c.endFillLocked(key, f)
	if e, ok := f.answer(); ok {
		if c.live && f.seen.allows(e) {
			c.installLocked(key, cacheEntry{teamState: e})
		} else {
			c.stats.Stale++
		}
	}
	c.mu.Unlock()
	close(f.done)
	return f.team, f.err
}

// inTime tells whether neither the echo e waits for nor the write that
// holds it is overdue yet, and drops e when one is; c.mu is held.
func (c *Cache) inTime(key string, e cacheEntry) bool {
	now := c.now()
	switch {
	case e.echoDue != 0 && now >= e.echoDue:
		c.stats.EchoesLate++
	case e.holdDue != 0 && now >= e.holdDue:
		c.stats.HoldsLate++
	default:
		return true
	}
	delete(c.entries, key)
	return false
}

// join waits for another miss's read of the same key. If that read failed
// (its caller's context ended, say) the caller reads for itself.
func (c *Cache) join(ctx context.Context, f *cacheFill, city string) (Team, error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		return Team{}, ctx.Err()
	}
	if f.err == nil || errors.Is(f.err, ErrNotFound) {
		return f.team, f.err
	}
	return c.store.Get(ctx, city)
}

// installLocked keeps e under key, evicting another entry when full; c.mu
// is held.
func (c *Cache) installLocked(key string, e cacheEntry) {
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.bound {
		for k := range c.entries { // an arbitrary entry: map order is random
			delete(c.entries, k)
			c.stats.Evictions++
			break
		}
	}
	c.entries[key] = e
}

// beginWrite registers a Put or Delete of key about to start. Writes of one
// key that overlap keep nothing: which of them the store applied last is
// not known here.
func (c *Cache) beginWrite(key string) *cacheWrite {
	w := &cacheWrite{}
	c.mu.Lock()
	w.due = c.now() + int64(FeedBound)
	ws := c.writing[key]
	if len(ws) > 0 {
		w.stale = true
		for _, o := range ws {
			o.stale = true
		}
	}
	c.writing[key] = append(ws, w)
	c.mu.Unlock()
	return w
}

// written drops key after this process wrote it, before the write is
// acknowledged (also after a failed write: it may have happened), and
// keeps the state e the write left when ok and no Change taken meanwhile
// said otherwise (cacheWrite.keeps). A write that changed the store
// (changed) has an echo on a feed with echoes; a Delete that found no
// team has none.
func (c *Cache) written(key string, w *cacheWrite, e teamState, ok, changed bool) {
	c.mu.Lock()
	ws := c.writing[key]
	for i, o := range ws {
		if o == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(c.writing, key)
	} else {
		c.writing[key] = ws
	}
	c.stats.Writes++
	c.dropLocked(key)
	if keep, await := w.keeps(e, c.echoes && changed); ok && c.live && keep {
		kept := cacheEntry{teamState: e}
		if await {
			kept.echoDue = w.due
		}
		c.installLocked(key, kept)
		c.stats.WritesKept++
	}
	c.mu.Unlock()
}

// List implements Store: always the store's answer.
func (c *Cache) List(ctx context.Context, opts ListOptions) ([]Team, bool, error) {
	return c.store.List(ctx, opts)
}

// Put implements Store.
func (c *Cache) Put(ctx context.Context, t Team) (Team, bool, error) {
	key := CityKey(t.City)
	w := c.beginWrite(key)
	stored, created, err := c.store.Put(ctx, t)
	c.written(key, w, teamState{team: stored, found: true}, err == nil, err == nil)
	return stored, created, err
}

// Delete implements Store. Deleting a city with no team leaves it with
// none as surely as deleting its team.
func (c *Cache) Delete(ctx context.Context, city string) (Team, error) {
	key := CityKey(city)
	w := c.beginWrite(key)
	t, err := c.store.Delete(ctx, city)
	c.written(key, w, teamState{}, err == nil || errors.Is(err, ErrNotFound), err == nil)
	return t, err
}

// Unwrap returns the store the cache reads.
func (c *Cache) Unwrap() Store { return c.store }

// Unwrap returns the store under s's caches (s itself when s is no
// Cache): the one whose own statistics a caller may want.
func Unwrap(s Store) Store {
	for {
		u, ok := s.(interface{ Unwrap() Store })
		if !ok {
			return s
		}
		s = u.Unwrap()
	}
}

// Feed implements Watchable: the store's feed.
func (c *Cache) Feed() *Feed { return c.store.Feed() }

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.Entries, st.Bound, st.Live = len(c.entries), c.bound, c.live
	return st
}

// Close stops following the feed, logs the counters and closes the store.
func (c *Cache) Close() error {
	c.stop()
	<-c.stopped
	c.sub.Close()
	c.report(true)
	return c.store.Close()
}

// report logs the counters: every CacheReportEvery when Gets were served
// since the last report, and at close.
func (c *Cache) report(closing bool) {
	st := c.Stats()
	c.mu.Lock()
	since := st.Reads() - c.reported.Reads()
	c.reported = st
	c.mu.Unlock()
	if since == 0 && !closing {
		return
	}
	c.logger.LogAttrs(context.Background(), slog.LevelInfo, "team cache",
		slog.Float64("hit_ratio", float64(int(st.HitRatio()*10000))/10000),
		slog.Uint64("hits", st.Hits), slog.Uint64("hits_not_found", st.HitsNotFound),
		slog.Uint64("misses", st.Misses), slog.Uint64("joined", st.Joined), slog.Uint64("down", st.Down), slog.Uint64("unconfirmed", st.Unconfirmed),
		slog.Uint64("stale", st.Stale), slog.Int("entries", st.Entries), slog.Int("bound", st.Bound),
		slog.Uint64("evictions", st.Evictions), slog.Uint64("changes", st.Changes), slog.Uint64("resets", st.Resets),
		slog.Uint64("confirmed", st.Confirmed), slog.Uint64("own", st.Own), slog.Uint64("older", st.Older), slog.Uint64("echoes_late", st.EchoesLate),
		slog.Uint64("held", st.Held), slog.Uint64("holds_late", st.HoldsLate),
		slog.Uint64("writes", st.Writes), slog.Uint64("writes_kept", st.WritesKept),
		slog.Bool("live", st.Live), slog.Bool("closing", closing))
}
