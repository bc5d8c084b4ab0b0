package sqlstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/services/teams"
)

// A store whose database is gone, or which is closing, fails with
// teams.ErrUnavailable, and TeamsService answers UNAVAILABLE, which
// clients and proxies retry, not INTERNAL.
func TestStoreUnavailable(t *testing.T) {
	t.Parallel()
	wantUnavailable := func(name string, store teams.Store) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := store.Get(ctx, "Chicago"); !errors.Is(err, teams.ErrUnavailable) {
			t.Errorf("%s: Get: %v, want ErrUnavailable", name, err)
		}
		if _, _, err := store.Put(ctx, teams.Team{City: "Gotham", Nickname: "Bats"}); !errors.Is(err, teams.ErrUnavailable) {
			t.Errorf("%s: Put: %v, want ErrUnavailable", name, err)
		}
		h := teams.NewHandler(store, "token")
		req := connect.NewRequest(&teamsv1.PutTeamRequest{City: "Gotham", Nickname: "Bats"})
		req.Header().Set("Authorization", "Bearer token")
		if _, err := h.PutTeam(ctx, req); connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("%s: PutTeam: %v, want unavailable", name, err)
		}
	}

	// PostgreSQL stopped under an open store: its pooled connections
	// broke, and new ones are refused.
	srv, err := pgtest.Start(pgtest.Require(t))
	if err != nil {
		t.Fatal(err)
	}
	var stop sync.Once // Stop once: it waits for the server's end
	defer stop.Do(srv.Stop)
	pg := openPostgres(t, srv.NewDatabase(t))
	defer pg.Close()
	if _, err := pg.Get(t.Context(), "Chicago"); err != nil {
		t.Fatalf("before the stop: %v", err)
	}
	stop.Do(srv.Stop)
	wantUnavailable("PostgreSQL stopped", pg)

	// SQLite closing: a write that arrives after Close.
	lite := openSQLite(t, t.TempDir())
	if err := lite.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := lite.Put(t.Context(), teams.Team{City: "Gotham", Nickname: "Bats"}); !errors.Is(err, teams.ErrUnavailable) {
		t.Errorf("SQLite closed: Put: %v, want ErrUnavailable", err)
	}
}
