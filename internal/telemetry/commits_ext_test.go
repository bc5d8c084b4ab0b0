package telemetry_test

import (
	"testing"

	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// The SQLite store's writes and the commits they took are metrics; one
// write at a time takes one commit each.
func TestMetricsTeamStoreCommits(t *testing.T) {
	store, err := sqlstore.OpenSQLite(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	m := startMetricsTeams(t, store)
	for _, city := range []string{"Miami", "Tampa", "Miami"} {
		m.put(t, city, "Sharks")
	}
	families := scrape(t, m.tel.Metrics())
	for _, name := range []string{"switchyard_teams_store_writes_total", "switchyard_teams_store_commits_total"} {
		ms := families[name].GetMetric()
		if len(ms) != 1 || ms[0].GetCounter().GetValue() != 3 {
			t.Errorf("%s = %v, want one series of 3", name, ms)
		}
	}
}
