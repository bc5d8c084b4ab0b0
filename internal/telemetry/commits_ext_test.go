package telemetry_test

import (
	"runtime"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// threeWrites makes three PutTeams, one at a time, on a new SQLite store
// served with metrics, and returns the metrics scraped after them.
func threeWrites(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	store, err := sqlstore.OpenSQLite(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	m := startMetricsTeams(t, store)
	for _, city := range []string{"Miami", "Tampa", "Miami"} {
		m.put(t, city, "Sharks")
	}
	return scrape(t, m.tel.Metrics())
}

// The SQLite store's writes and the commits they took are metrics; one
// write at a time takes one commit each.
func TestMetricsTeamStoreCommits(t *testing.T) {
	families := threeWrites(t)
	for _, name := range []string{"switchyard_teams_store_writes_total", "switchyard_teams_store_commits_total"} {
		ms := families[name].GetMetric()
		if len(ms) != 1 || ms[0].GetCounter().GetValue() != 3 {
			t.Errorf("%s = %v, want one series of 3", name, ms)
		}
	}
}

// On Linux, SQLite's fsyncs are a metric by how they waited; three writes
// made one at a time took three at least.
func TestMetricsSQLiteFsyncs(t *testing.T) {
	ms := threeWrites(t)["switchyard_sqlite_fsyncs_total"].GetMetric()
	if runtime.GOOS != "linux" {
		if len(ms) != 0 {
			t.Errorf("switchyard_sqlite_fsyncs_total = %v on %s, where the VFS is not registered", ms, runtime.GOOS)
		}
		return
	}
	byWait := map[string]float64{}
	for _, mm := range ms {
		for _, l := range mm.GetLabel() {
			if l.GetName() == "wait" {
				byWait[l.GetValue()] = mm.GetCounter().GetValue()
			}
		}
	}
	if len(ms) != 2 || len(byWait) != 2 || byWait["parked"]+byWait["blocking"] < 3 {
		t.Errorf("switchyard_sqlite_fsyncs_total = %v, want wait=parked and wait=blocking, 3 or more in all", ms)
	}
}
