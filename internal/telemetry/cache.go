package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchyard/switchyard/services/teams"
)

// CacheStatser is a team store with a read cache: teams.Cache.
type CacheStatser interface {
	Stats() teams.CacheStats
}

// ObserveCache reports the counters of the team cache c in the metrics,
// read at each scrape.
func (t *Telemetry) ObserveCache(c CacheStatser) {
	if t.metrics == nil || c == nil {
		return
	}
	t.metrics.poolsMu.Lock()
	t.metrics.caches = append(t.metrics.caches, c)
	t.metrics.poolsMu.Unlock()
}

// cacheInstruments reports the team caches given to ObserveCache: the
// hit ratio is the rate of gets{result=~"hit.*"} over all gets.
func (m *metrics) cacheInstruments(meter metric.Meter) error {
	gets, err := meter.Int64ObservableCounter("switchyard.teams.cache.gets",
		metric.WithDescription("GetTeam lookups of the team cache, by result: hit (a team), hit_not_found (a kept \"no team\" answer), miss (read from the store and kept), joined (shared a miss's read), down (read from the store while the change feed was down)."))
	if err != nil {
		return err
	}
	stale, err := meter.Int64ObservableCounter("switchyard.teams.cache.stale",
		metric.WithDescription("Misses whose answer was not kept: a change to their team arrived while they read it."))
	if err != nil {
		return err
	}
	evictions, err := meter.Int64ObservableCounter("switchyard.teams.cache.evictions",
		metric.WithDescription("Entries evicted to stay within -team-cache-entries."))
	if err != nil {
		return err
	}
	drops, err := meter.Int64ObservableCounter("switchyard.teams.cache.invalidations",
		metric.WithDescription("What the cache dropped, by cause: change (one team, from the feed), reset (everything, from the feed), write (one team, written by this process, its new state not kept), echo_late (one team this process wrote, whose echo from the feed's source did not come within the feed's bound), hold_late (one team held for this process's write of it, which did not end within the hold)."))
	if err != nil {
		return err
	}
	kept, err := meter.Int64ObservableCounter("switchyard.teams.cache.kept",
		metric.WithDescription("What the cache kept without reading the store, by cause: confirmed (a change from the feed whose state was the one kept: a write's echo), write (the state this process's write left), older (a change from the feed's source that committed before this process's write of the team: it came before that write's echo), held (a change taken while this process wrote the team: the write replaces the entry as it ends)."))
	if err != nil {
		return err
	}
	entries, err := meter.Int64ObservableGauge("switchyard.teams.cache.entries",
		metric.WithDescription("Answers kept now (teams and \"no team\" answers)."))
	if err != nil {
		return err
	}
	limit, err := meter.Int64ObservableGauge("switchyard.teams.cache.entries.limit",
		metric.WithDescription("The most answers kept (-team-cache-entries)."))
	if err != nil {
		return err
	}
	live, err := meter.Int64ObservableGauge("switchyard.teams.cache.live",
		metric.WithDescription("1 while the cache follows a live change feed, 0 while it reads through to the store."))
	if err != nil {
		return err
	}
	results := []string{"hit", "hit_not_found", "miss", "joined", "down", "unconfirmed"}
	causes := []string{"change", "reset", "write", "echo_late", "hold_late"}
	keptCauses := []string{"confirmed", "write", "older", "held"}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.poolsMu.Lock()
		caches := m.caches
		m.poolsMu.Unlock()
		for _, c := range caches {
			st := c.Stats()
			for i, n := range []uint64{st.Hits - st.HitsNotFound, st.HitsNotFound, st.Misses, st.Joined, st.Down, st.Unconfirmed} {
				o.ObserveInt64(gets, int64(n), metric.WithAttributes(attribute.String("result", results[i])))
			}
			// The store's reports of this process's writes (Own) change
			// nothing: the writes applied themselves.
			for i, n := range []uint64{st.Changes - st.Resets - st.Confirmed - st.Own - st.Older - st.Held, st.Resets, st.Writes - st.WritesKept, st.EchoesLate, st.HoldsLate} {
				o.ObserveInt64(drops, int64(n), metric.WithAttributes(attribute.String("cause", causes[i])))
			}
			for i, n := range []uint64{st.Confirmed, st.WritesKept, st.Older, st.Held} {
				o.ObserveInt64(kept, int64(n), metric.WithAttributes(attribute.String("cause", keptCauses[i])))
			}
			o.ObserveInt64(stale, int64(st.Stale))
			o.ObserveInt64(evictions, int64(st.Evictions))
			o.ObserveInt64(entries, int64(st.Entries))
			o.ObserveInt64(limit, int64(st.Bound))
			b := int64(0)
			if st.Live {
				b = 1
			}
			o.ObserveInt64(live, b)
		}
		return nil
	}, gets, stale, evictions, drops, kept, entries, limit, live)
	return err
}
