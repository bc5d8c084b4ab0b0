package teams

import (
	"context"
	"errors"
	"sync"
	"time"
)

// FeedBound is the change feed's promise: while a feed is live, every
// subscriber of every process sharing the store learns of a team write or
// delete within FeedBound of the write's acknowledgement; when a feed
// cannot keep that promise it tells its subscribers so (a Change with All
// set and Live false) within the same bound.
const FeedBound = time.Second

// ConfirmedWithin is how old a confirming feed's last confirmation
// (Change.AsOf) may be for a subscriber to take what it kept from the feed
// as up to date: a confirmation is due every source interval (at most
// 250 ms), so an older one means this process did not run, or its source
// did not answer, for longer than the feed allows for. FeedBound less a
// quarter for the time between the confirmation and its use.
const ConfirmedWithin = FeedBound * 3 / 4

// Change is one event of a change feed.
//
// A subscriber that keeps a copy of teams (a cache) stays correct by
// following three rules: on a Change with a Key, drop that key — unless
// the Change is Known and what is kept is its state; drop everything on a
// Change with All; and read from the store, without keeping what it read,
// while the last Change it took had Live false. On a feed with echoes
// (Feed.Echoes), a subscriber that applies this process's writes itself
// may also pass over Local changes, and rely on the order of the others
// (see Local).
type Change struct {
	// Key is the CityKey of a team that was created, renamed, updated or
	// deleted. It is empty when All is set.
	Key string
	// All means any team may have changed: the subscription has just
	// started, the feed lost its source or regained it (changes made
	// meanwhile were not seen), its subscriber fell too far behind, or the
	// source could not tell which teams changed.
	All bool
	// Live tells whether the feed was live when this change was queued:
	// whether changes after it will be delivered within FeedBound.
	Live bool
	// Known tells that Found and Team are Key's state as the write left
	// it: its team (Found), or no team (a delete, or a rename away from
	// Key; Team is then zero). Without Known the change says only that
	// Key changed. A state is that of one write: a later write of the key
	// has its own Change, after this one.
	Known bool
	Found bool
	Team  Team
	// Local marks a store's report of its own write as the write
	// commits, on a feed with echoes: its source reports the same write
	// again (its echo) unless the feed goes down meanwhile. The source's
	// changes — every process's writes, this one's included, and never
	// Local — arrive in the order the writes committed, so a source change
	// of a key that arrives before the echo of a write of that key
	// committed before that write.
	Local bool
	// AsOf, when not zero, confirms that every write committed before it
	// was reported before this Change (a Change with AsOf and neither Key
	// nor All says only that), on a confirming feed (Feed.SetConfirming).
	// Only a Cache's subscription takes confirmations: Subscribe's
	// Changes never have AsOf set.
	AsOf time.Time
}

// Wrote returns the Change of a write that left key with team t (found),
// or with no team.
func Wrote(key string, t Team, found bool) Change {
	if !found {
		t = Team{}
	}
	return Change{Key: key, Known: true, Found: found, Team: t}
}

// Watchable is a Store with a change feed.
type Watchable interface {
	Store
	// Feed is the store's change feed. It is live from the store's open
	// until its Close, except while its source is lost.
	Feed() *Feed
}

// ErrFeedClosed is returned by Subscription.Next once the subscription or
// its feed is closed.
var ErrFeedClosed = errors.New("teams: change feed closed")

// maxQueued bounds the changes waiting for one subscriber. A subscriber
// that falls further behind gets one Change with All instead of the
// backlog, so a slow subscriber costs bounded memory and never slows the
// feed or other subscribers.
const maxQueued = 4096

// Feed fans a store's changes out to its subscribers, each in the order
// the store reported them. Store implementations report through
// ReportLocal, Report and Reset; consumers call Subscribe and Live.
//
// Guarantees, per subscription: changes arrive in the order they were
// reported; a Change for a key is reported only after the write is
// visible to the store's readers; the same write may be reported more
// than once (a store reports its own writes at once and again when its
// source sees them), never less. A feed with echoes (NewEchoFeed) also
// promises that its source's changes come in commit order (Change.Local).
type Feed struct {
	mu         sync.Mutex
	live       bool
	echoes     bool      // set at creation
	confirming bool      // set before the first subscription
	asOf       time.Time // of the last confirmation while live
	since      time.Time
	closed     bool
	subs       map[*Subscription]struct{}
	stats      FeedStats
}

// FeedStats are a feed's counters, for logs and metrics.
type FeedStats struct {
	// Live is the feed's state, and Since when it last changed.
	Live  bool
	Since time.Time
	// Subscribers are the open subscriptions.
	Subscribers int
	// Changes counts keys reported; Resets counts Changes with All.
	Changes, Resets uint64
	// Outages counts the times the feed went from live to down.
	Outages uint64
	// Overflows counts backlogs replaced by one All because a subscriber
	// fell more than 4096 changes behind.
	Overflows uint64
	// Lag is the source's latest measure of how late a change can reach
	// this feed (PostgreSQL: the listener's heartbeat round trip; SQLite:
	// the time between the last two polls, plus the poll).
	Lag time.Duration
}

// NewFeed returns a feed with no subscribers, live or not, on which every
// report is the only one of its write (ReportLocal marks nothing Local).
func NewFeed(live bool) *Feed {
	return &Feed{live: live, since: time.Now(), subs: map[*Subscription]struct{}{}}
}

// NewEchoFeed returns a feed with echoes: its store reports its own writes
// at once (ReportLocal, marked Local), and its source reports every write
// to the store again (Report), in the order the writes committed.
func NewEchoFeed(live bool) *Feed {
	f := NewFeed(live)
	f.echoes = true
	return f
}

// Echoes tells whether the feed has echoes (NewEchoFeed).
func (f *Feed) Echoes() bool { return f.echoes }

// SetConfirming makes f a confirming feed: its source calls Confirm at
// least every 250 ms while it is live, and its subscribers rely on what
// they kept only while the last confirmation is recent (ConfirmedWithin).
// So a process that did not run for a while (stopped, starved of CPU, its
// machine paused) serves nothing from before it stopped until its source
// has caught up, although the feed never went down. For Store
// implementations, before the feed's first subscription.
func (f *Feed) SetConfirming() {
	f.mu.Lock()
	f.confirming = true
	f.mu.Unlock()
}

// Confirming tells whether f is a confirming feed (SetConfirming).
func (f *Feed) Confirming() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.confirming
}

// Confirm reports that every write committed before asOf was reported.
// For Store implementations: the time a poll began whose results are
// reported, or a heartbeat was sent that came back after every change
// committed before it; called while the feed is live. An asOf older than
// one confirmed already is ignored.
func (f *Feed) Confirm(asOf time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.live || !asOf.After(f.asOf) {
		return
	}
	f.asOf = asOf
	for s := range f.subs {
		if s.confirms {
			s.push(Change{Live: true, AsOf: asOf}, &f.stats)
		}
	}
}

// Subscribe starts a subscription. Its first Change has All set and the
// feed's current Live state, so a subscriber needs no other start-up.
// Its Changes never have AsOf set: see subscribe.
func (f *Feed) Subscribe() *Subscription { return f.subscribe(false) }

// subscribe starts a subscription that, with confirms, also takes the
// feed's confirmations (Change.AsOf), which Cache follows.
func (f *Feed) subscribe(confirms bool) *Subscription {
	s := &Subscription{feed: f, ready: make(chan struct{}, 1), confirms: confirms}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		s.closed = true
		return s
	}
	f.subs[s] = struct{}{}
	s.push(Change{All: true, Live: f.live, AsOf: f.asOf}, &f.stats)
	return s
}

// Live reports whether the feed is live now.
func (f *Feed) Live() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.live
}

// Stats returns the feed's counters.
func (f *Feed) Stats() FeedStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stats
	st.Live, st.Since, st.Subscribers = f.live, f.since, len(f.subs)
	return st
}

// Changed reports that the team of key (a CityKey) was written or deleted.
// For Store implementations: call it only once the write is visible, and
// prefer Report when the write's outcome is known.
func (f *Feed) Changed(key string) { f.Report(Change{Key: key}) }

// Report reports c, a Change with a Key (see Wrote); its Live is the
// feed's. For Store implementations: call it only once the write is
// visible; on a feed with echoes, only from the source, in the order the
// source delivers.
func (f *Feed) Report(c Change) { f.report(c, false) }

// ReportLocal reports c, this process's own write (see Wrote), as it
// commits: marked Local on a feed with echoes, whose source will report
// it again; on another feed the same as Report.
func (f *Feed) ReportLocal(c Change) { f.report(c, f.echoes) }

func (f *Feed) report(c Change, local bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Changes++
	c.All, c.Live, c.Local = false, f.live, local
	for s := range f.subs {
		s.push(c, &f.stats)
	}
}

// Reset reports that any team may have changed, and sets the feed live or
// down. For Store implementations: call Reset(false) as soon as changes
// may go unseen, and Reset(true) once they are seen again; on a confirming
// feed Reset(true) confirms the time it is called, Reset(false) forgets
// the last confirmation.
func (f *Feed) Reset(live bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if f.live && !live {
		f.stats.Outages++
	}
	if f.live != live {
		f.since = now
	}
	f.live = live
	f.asOf = time.Time{}
	if live && f.confirming {
		f.asOf = now
	}
	f.stats.Resets++
	for s := range f.subs {
		s.push(Change{All: true, Live: live, AsOf: f.asOf}, &f.stats)
	}
}

// ObserveLag records the source's latest lag measurement (see FeedStats).
func (f *Feed) ObserveLag(d time.Duration) {
	f.mu.Lock()
	f.stats.Lag = d
	f.mu.Unlock()
}

// Close sets the feed down for good and ends every subscription: Next
// returns what is queued, then ErrFeedClosed.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed, f.live = true, false
	for s := range f.subs {
		s.push(Change{All: true, Live: false}, &f.stats)
		s.closed = true
		delete(f.subs, s)
	}
}

// Subscription is one subscriber's ordered queue of changes.
type Subscription struct {
	feed  *Feed
	ready chan struct{} // holds a token while queue is not empty or closed

	confirms bool // takes the feed's confirmations (subscribe)

	// Guarded by feed.mu.
	queue  []Change
	closed bool
}

// push queues c; f.mu is held.
func (s *Subscription) push(c Change, st *FeedStats) {
	if !s.confirms {
		c.AsOf = time.Time{}
	}
	if len(s.queue) >= maxQueued {
		// Everything queued is covered by one All with the current state.
		st.Overflows++
		s.queue = append(s.queue[:0], Change{All: true, Live: c.Live})
		if !c.All {
			s.queue = append(s.queue, c)
		}
	} else {
		s.queue = append(s.queue, c)
	}
	s.signal()
}

func (s *Subscription) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Next returns the next change, waiting until there is one, ctx ends, or
// the subscription or its feed is closed (ErrFeedClosed).
func (s *Subscription) Next(ctx context.Context) (Change, error) {
	for {
		s.feed.mu.Lock()
		if len(s.queue) > 0 {
			c := s.queue[0]
			s.queue[0] = Change{}
			s.queue = s.queue[1:]
			if len(s.queue) == 0 {
				s.queue = nil // let a long backlog's array go
			}
			s.feed.mu.Unlock()
			return c, nil
		}
		closed := s.closed
		s.feed.mu.Unlock()
		if closed {
			return Change{}, ErrFeedClosed
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return Change{}, ctx.Err()
		}
	}
}

// Ready is signalled when Next may have a change without waiting: a
// subscriber that selects on several sources waits on it, then calls Next.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Close ends the subscription; its queue is dropped.
func (s *Subscription) Close() {
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	delete(s.feed.subs, s)
	s.queue, s.closed = nil, true
	s.signal()
}
