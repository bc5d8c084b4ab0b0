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
	// The write's state is kept: its next read is a hit.
	if res, err := srv.client.GetTeam(ctx, connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"})); err != nil || res.Msg.GetNickname() != "Bears" {
		t.Fatalf("GetTeam(Chicago) after the write = %v, %v", res, err)
	}

	families := scrape(t, srv.tel.Metrics())
	gets := map[string]float64{}
	for _, m := range families["switchyard_teams_cache_gets_total"].GetMetric() {
		gets[labels(m)["result"]] = m.GetCounter().GetValue()
	}
	want := map[string]float64{"hit": 3, "hit_not_found": 1, "miss": 2, "joined": 0, "down": 0, "unconfirmed": 0}
	for result, n := range want {
		if gets[result] != n {
			t.Errorf("switchyard_teams_cache_gets_total{result=%q} = %v, want %v (all: %v)", result, gets[result], n, gets)
		}
	}
	byCause := func(name string) map[string]float64 {
		out := map[string]float64{}
		for _, m := range families[name].GetMetric() {
			out[labels(m)["cause"]] = m.GetCounter().GetValue()
		}
		return out
	}
	if drops, kept := byCause("switchyard_teams_cache_invalidations_total"), byCause("switchyard_teams_cache_kept_total"); drops["write"] != 0 || kept["write"] != 1 {
		t.Errorf("this process's write: dropped %v, kept %v times; want kept once (invalidations %v, kept %v)", drops["write"], kept["write"], drops, kept)
	}
	gauge := func(name string) float64 {
		ms := families[name].GetMetric()
		if len(ms) != 1 {
			t.Fatalf("%s: %d series", name, len(ms))
		}
		return ms[0].GetGauge().GetValue()
	}
	if e, l, live := gauge("switchyard_teams_cache_entries"), gauge("switchyard_teams_cache_entries_limit"), gauge("switchyard_teams_cache_live"); e != 2 || l != 8 || live != 1 {
		t.Errorf("entries %v (want 2: Atlantis, and Chicago as written), limit %v (8), live %v (1)", e, l, live)
	}
}
