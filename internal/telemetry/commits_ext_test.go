package telemetry_test

import (
	"io"
	"log/slog"
	"testing"

	"connectrpc.com/connect"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/telemetry"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// The SQLite store's writes and the commits they took are metrics; one
// write at a time takes one commit each.
func TestMetricsTeamStoreCommits(t *testing.T) {
	tel, err := telemetry.New(telemetry.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlstore.OpenSQLite(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	srv := testserver.StartWith(t, server.Config{Telemetry: tel, Teams: store, AdminToken: "commit-token"}, testserver.Options{})
	client := teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL, connect.WithGRPC())
	for _, city := range []string{"Miami", "Tampa", "Miami"} {
		put := connect.NewRequest(&teamsv1.PutTeamRequest{City: city, Nickname: "Sharks"})
		put.Header().Set("Authorization", "Bearer commit-token")
		if _, err := client.PutTeam(t.Context(), put); err != nil {
			t.Fatal(err)
		}
	}
	families := scrape(t, tel.Metrics())
	for _, name := range []string{"switchyard_teams_store_writes_total", "switchyard_teams_store_commits_total"} {
		ms := families[name].GetMetric()
		if len(ms) != 1 || ms[0].GetCounter().GetValue() != 3 {
			t.Errorf("%s = %v, want one series of 3", name, ms)
		}
	}
}
