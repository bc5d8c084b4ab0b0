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
	"github.com/switchyard/switchyard/services/teams"
)

// metricsTeams is a server with metrics on, serving a team store, and a
// gRPC client of its TeamsService.
type metricsTeams struct {
	tel    *telemetry.Telemetry
	client teamsv1connect.TeamsServiceClient
}

const metricsAdminToken = "metrics-token"

// startMetricsTeams serves store (the default directory when nil) with
// metrics on and writes enabled.
func startMetricsTeams(t *testing.T, store teams.Store) metricsTeams {
	t.Helper()
	tel, err := telemetry.New(telemetry.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := testserver.Start(t, server.Config{Telemetry: tel, Teams: store, AdminToken: metricsAdminToken})
	return metricsTeams{tel: tel, client: teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL, connect.WithGRPC())}
}

// put writes a team through PutTeam.
func (m metricsTeams) put(t *testing.T, city, nickname string) {
	t.Helper()
	req := connect.NewRequest(&teamsv1.PutTeamRequest{City: city, Nickname: nickname})
	req.Header().Set("Authorization", "Bearer "+metricsAdminToken)
	if _, err := m.client.PutTeam(t.Context(), req); err != nil {
		t.Fatal(err)
	}
}
