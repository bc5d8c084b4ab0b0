package sqlstore

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/switchyard/switchyard/services/teams"
)

// DefaultFeedInterval is how often the change feed checks its source:
// SQLite polls PRAGMA data_version, PostgreSQL round-trips a heartbeat
// through its listener connection.
const DefaultFeedInterval = 200 * time.Millisecond

// MaxFeedInterval is the longest interval that keeps teams.FeedBound: a
// PostgreSQL listener that stops answering is noticed within three
// intervals (the next heartbeat, then twice its interval to come back).
const MaxFeedInterval = 250 * time.Millisecond

// feedReportEvery is how often a feed logs its counters and lag.
const feedReportEvery = time.Minute

// Option configures OpenSQLite and OpenPostgres.
type Option func(*options)

type options struct {
	logger       *slog.Logger
	feedInterval time.Duration
	// readLookEvery is how often SQLite's read pool looks for reads that
	// waited (readlimit.go); 0 for no looks (tests look themselves).
	readLookEvery time.Duration
	// groupLockTimeout is how long PostgreSQL's grouped writes wait for a
	// row lock (pgGroupLockTimeout; tests set it longer).
	groupLockTimeout time.Duration
	// settleWithin bounds how long a PostgreSQL group whose COMMIT's
	// answer was lost tries to learn the outcome (pgSettleWithin; tests
	// set it shorter).
	settleWithin time.Duration
	// timeout bounds each PostgreSQL read and write (pgTimeout; tests
	// set it shorter).
	timeout time.Duration
}

func newOptions(opts []Option) options {
	o := options{logger: slog.Default(), feedInterval: DefaultFeedInterval, readLookEvery: readLookEvery, groupLockTimeout: pgGroupLockTimeout, settleWithin: pgSettleWithin, timeout: pgTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithLogger sends the store's log lines (the change feed's state, lag and
// reconnects) to l instead of slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithFeedInterval sets how often the change feed checks its source
// (DefaultFeedInterval if d is zero; at most MaxFeedInterval).
func WithFeedInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.feedInterval = min(d, MaxFeedInterval)
		}
	}
}

// Feed implements teams.Watchable. The feed reports this store's own
// writes as soon as they commit, and every write to the database — by
// any process, any switchyard version that migrated it, or by hand — once
// its source sees it: PostgreSQL's NOTIFY from a trigger, or SQLite's
// change log, also kept by triggers.
func (s *Store) Feed() *teams.Feed { return s.feed }

var _ teams.Watchable = (*Store)(nil)

// startFeed runs source until the store closes. The feed is down until
// the source first reports it live.
func (s *Store) startFeed(source func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	stop := goUntilStopped(func(<-chan struct{}) { source(ctx) })
	s.stopFeed = func() {
		cancel()
		stop()
	}
}

// goUntilStopped runs f on a goroutine of its own; the function it returns
// closes f's stop channel and waits for f to return, once however often
// it is called (a store may be closed twice).
func goUntilStopped(f func(stop <-chan struct{})) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		f(stop)
	}()
	return sync.OnceFunc(func() {
		close(stop)
		<-done
	})
}

// feedLog writes a feed's state changes as they happen and its counters
// once a minute, so an operator sees its lag and reconnects in the log.
type feedLog struct {
	logger *slog.Logger
	feed   *teams.Feed
	source string
	now    func() time.Time // time.Now; tests set a clock of their own
	next   time.Time
	maxLag time.Duration

	// While the source is down: since when, how many tries failed, when
	// "still down" was last logged, and how long until it is logged again
	// (stillDownFirst, doubling up to stillDownEvery).
	downSince time.Time
	failures  int
	loggedAt  time.Time
	quiet     time.Duration
}

// A source that stays down is logged at its first failed retry, then
// about 1, 3, 7, 15 ... s after it went down, at most once a minute, each
// line with the latest error. SQLite's poller retries every interval
// (200 ms), which would otherwise be five lines a second; an error whose
// text changes at each try (a local port) must not undo that.
const (
	stillDownFirst = time.Second
	stillDownEvery = time.Minute
)

func newFeedLog(logger *slog.Logger, feed *teams.Feed, source string) *feedLog {
	return &feedLog{logger: logger, feed: feed, source: source, now: time.Now, next: time.Now().Add(feedReportEvery)}
}

// live reports the source followed: for the first time, or again after
// being down since the first failure down reported.
func (l *feedLog) live() {
	l.feed.Reset(true)
	since := l.downSince
	l.downSince, l.failures = time.Time{}, 0
	if since.IsZero() {
		l.logger.Info("team feed live", "source", l.source)
		return
	}
	l.logger.Info("team feed live again; subscribers told everything may have changed",
		"source", l.source, "down_for", l.now().Sub(since).Round(time.Millisecond), "outages", l.feed.Stats().Outages)
}

// down reports the source lost (or not reached) because of err, to be
// tried again in retryIn.
func (l *feedLog) down(err error, retryIn time.Duration) {
	now := l.now()
	if l.downSince.IsZero() {
		l.downSince = now
	}
	l.failures++
	if l.feed.Live() {
		l.feed.Reset(false)
		l.logger.Warn("team feed down; subscribers told everything may have changed, reads go to the store until it is back",
			"source", l.source, "err", err, "retry_in", retryIn)
		l.loggedAt, l.quiet = now, stillDownFirst
		return
	}
	if l.failures > 1 && now.Sub(l.loggedAt) < l.quiet {
		return
	}
	l.logger.Warn("team feed still down", "source", l.source, "err", err, "retry_in", retryIn,
		"failures", l.failures, "down_for", now.Sub(l.downSince).Round(time.Millisecond))
	l.loggedAt, l.quiet = now, min(max(2*l.quiet, stillDownFirst), stillDownEvery)
}

// lag records one lag measurement; a lag past half the bound is logged at
// once, and the worst of each minute with the counters.
func (l *feedLog) lag(d time.Duration) {
	l.feed.ObserveLag(d)
	l.maxLag = max(l.maxLag, d)
	if d > teams.FeedBound/2 {
		l.logger.Warn("team feed slow", "source", l.source, "lag", d.Round(time.Millisecond), "bound", teams.FeedBound)
	}
	if time.Now().After(l.next) {
		st := l.feed.Stats()
		l.logger.Info("team feed", "source", l.source, "live", st.Live, "max_lag", l.maxLag.Round(time.Microsecond),
			"changes", st.Changes, "resets", st.Resets, "outages", st.Outages, "subscribers", st.Subscribers, "overflows", st.Overflows)
		l.next, l.maxLag = time.Now().Add(feedReportEvery), 0
	}
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
