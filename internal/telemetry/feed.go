package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/metric"

	"github.com/switchyard/switchyard/services/teams"
)

// FeedStatser is a team change feed: teams.Feed.
type FeedStatser interface {
	Stats() teams.FeedStats
}

// ObserveFeed reports the state and counters of the team change feed f
// in the metrics, read at each scrape: whether it is live, its outages
// and its lag are what an operator watches to know replicas agree.
func (t *Telemetry) ObserveFeed(f FeedStatser) {
	if t.metrics == nil || f == nil {
		return
	}
	t.metrics.poolsMu.Lock()
	t.metrics.feeds = append(t.metrics.feeds, f)
	t.metrics.poolsMu.Unlock()
}

// feedInstruments reports the feeds given to ObserveFeed.
func (m *metrics) feedInstruments(meter metric.Meter) error {
	live, err := meter.Int64ObservableGauge("switchyard.teams.feed.live",
		metric.WithDescription("1 while the team change feed is live (every change reaches this process within 1 s), 0 while its source is lost (PostgreSQL listener down, SQLite change log unreadable): caches then read through to the store."))
	if err != nil {
		return err
	}
	outages, err := meter.Int64ObservableCounter("switchyard.teams.feed.outages",
		metric.WithDescription("Times the team change feed went from live to down (its listener reconnects on its own)."))
	if err != nil {
		return err
	}
	changes, err := meter.Int64ObservableCounter("switchyard.teams.feed.changes",
		metric.WithDescription("Team writes and deletes the feed reported, by key (this process's and other replicas')."))
	if err != nil {
		return err
	}
	resets, err := meter.Int64ObservableCounter("switchyard.teams.feed.resets",
		metric.WithDescription("\"Everything may have changed\" reports: the feed lost or regained its source, or could not say which team changed."))
	if err != nil {
		return err
	}
	overflows, err := meter.Int64ObservableCounter("switchyard.teams.feed.overflows",
		metric.WithDescription("Subscriber backlogs replaced by one \"everything may have changed\" because a subscriber fell too far behind."))
	if err != nil {
		return err
	}
	lag, err := meter.Float64ObservableGauge("switchyard.teams.feed.lag", metric.WithUnit("s"),
		metric.WithDescription("The feed source's latest measure of how late a change can reach this process (PostgreSQL: the listener's heartbeat round trip; SQLite: the poll interval and the poll)."))
	if err != nil {
		return err
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.poolsMu.Lock()
		feeds := m.feeds
		m.poolsMu.Unlock()
		for _, f := range feeds {
			st := f.Stats()
			l := int64(0)
			if st.Live {
				l = 1
			}
			o.ObserveInt64(live, l)
			o.ObserveInt64(outages, int64(st.Outages))
			o.ObserveInt64(changes, int64(st.Changes))
			o.ObserveInt64(resets, int64(st.Resets))
			o.ObserveInt64(overflows, int64(st.Overflows))
			o.ObserveFloat64(lag, st.Lag.Seconds())
		}
		return nil
	}, live, outages, changes, resets, overflows, lag)
	return err
}
