package telemetry_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"connectrpc.com/connect"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/services/teams"
)

// The team cache's counters are in the metrics: a known sequence of
// GetTeam and PutTeam calls, scraped.
func TestMetricsTeamCache(t *testing.T) {
	cache := teams.NewCache(teams.NewMemStore(teams.TutorialTeams), 8, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { _ = cache.Close() })
	for deadline := time.Now().Add(5 * time.Second); !cache.Stats().Live; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the cache never took its feed's first change")
		}
	}
	srv := startMetricsTeams(t, cache)
	ctx := context.Background()
	for _, city := range []string{"Chicago", "Chicago", "Chicago", "Atlantis", "Atlantis"} {
		_, err := srv.client.GetTeam(ctx, connect.NewRequest(&teamsv1.GetTeamRequest{City: city}))
		if err != nil && connect.CodeOf(err) != connect.CodeNotFound {
			t.Fatal(err)
		}
	}
	srv.put(t, "Chicago", "Bears")

	families := scrape(t, srv.tel.Metrics())
	gets := map[string]float64{}
	for _, m := range families["switchyard_teams_cache_gets_total"].GetMetric() {
		gets[labels(m)["result"]] = m.GetCounter().GetValue()
	}
	want := map[string]float64{"hit": 2, "hit_not_found": 1, "miss": 2, "joined": 0, "down": 0}
	for result, n := range want {
		if gets[result] != n {
			t.Errorf("switchyard_teams_cache_gets_total{result=%q} = %v, want %v (all: %v)", result, gets[result], n, gets)
		}
	}
	writes := 0.0
	for _, m := range families["switchyard_teams_cache_invalidations_total"].GetMetric() {
		if labels(m)["cause"] == "write" {
			writes = m.GetCounter().GetValue()
		}
	}
	if writes != 1 {
		t.Errorf("invalidations by this process's writes = %v, want 1", writes)
	}
	gauge := func(name string) float64 {
		ms := families[name].GetMetric()
		if len(ms) != 1 {
			t.Fatalf("%s: %d series", name, len(ms))
		}
		return ms[0].GetGauge().GetValue()
	}
	if e, l, live := gauge("switchyard_teams_cache_entries"), gauge("switchyard_teams_cache_entries_limit"), gauge("switchyard_teams_cache_live"); e != 1 || l != 8 || live != 1 {
		t.Errorf("entries %v (want 1: Atlantis; Chicago was written), limit %v (8), live %v (1)", e, l, live)
	}
}
