package telemetry_test

import (
	"testing"
	"time"

	"github.com/switchyard/switchyard/services/teams"
)

// The team change feed's state and counters are metrics: whether it is
// live, its outages, the changes it reported and its lag.
func TestMetricsTeamFeed(t *testing.T) {
	store := teams.NewMemStore(teams.TutorialTeams)
	m := startMetricsTeams(t, store)
	m.put(t, "Miami", "Sharks")
	// value reads one single-series metric of the scrape.
	value := func(name string) float64 {
		t.Helper()
		ms := scrape(t, m.tel.Metrics())[name].GetMetric()
		if len(ms) != 1 {
			t.Fatalf("%s: %d series, want 1", name, len(ms))
		}
		if c := ms[0].GetCounter(); c != nil {
			return c.GetValue()
		}
		return ms[0].GetGauge().GetValue()
	}
	if live, changes, outages := value("switchyard_teams_feed_live"), value("switchyard_teams_feed_changes_total"), value("switchyard_teams_feed_outages_total"); live != 1 || changes != 1 || outages != 0 {
		t.Errorf("after one write: live %v, changes %v, outages %v; want 1, 1, 0", live, changes, outages)
	}
	store.Feed().Reset(false) // the source is lost
	store.Feed().ObserveLag(250 * time.Millisecond)
	if live, outages, resets, lag := value("switchyard_teams_feed_live"), value("switchyard_teams_feed_outages_total"),
		value("switchyard_teams_feed_resets_total"), value("switchyard_teams_feed_lag_seconds"); live != 0 || outages != 1 || resets != 1 || lag != 0.25 {
		t.Errorf("feed down: live %v, outages %v, resets %v, lag %v; want 0, 1, 1, 0.25", live, outages, resets, lag)
	}
	store.Feed().Reset(true)
	if live := value("switchyard_teams_feed_live"); live != 1 {
		t.Errorf("feed back: live %v, want 1", live)
	}
}
