package sqlstore_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/internal/waits"
	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// The store tells the server of a call (waits.Begin) before it waits on
// something other than the CPU: a write for its commit, on both
// databases; a read only on PostgreSQL, where every statement crosses the
// network (SQLite reads the file the page cache holds). internal/h2 then
// stops counting the handler among those it runs per core.
func TestStoreSaysWhenItWaits(t *testing.T) {
	for _, db := range []struct {
		name       string
		remoteRead bool
		open       func(t *testing.T) *sqlstore.Store
	}{
		{"sqlite", false, func(t *testing.T) *sqlstore.Store { return openSQLite(t, t.TempDir()) }},
		{"postgres", true, func(t *testing.T) *sqlstore.Store { return openPostgres(t, pgtest.Database(t)) }},
	} {
		t.Run(db.name, func(t *testing.T) {
			s := db.open(t)
			defer func() { _ = s.Close() }()
			op := func(name string, wantWait bool, f func(ctx context.Context) error) {
				t.Helper()
				var n atomic.Int32
				if err := f(context.WithValue(t.Context(), waits.ContextKey, waits.WaiterFunc(func() { n.Add(1) }))); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if got := n.Load() > 0; got != wantWait {
					t.Errorf("%s: told the server it waits: %v, want %v", name, got, wantWait)
				}
			}
			op("Put", true, func(ctx context.Context) error {
				_, _, err := s.Put(ctx, teams.Team{City: "Miami", Nickname: "Sharks"})
				return err
			})
			op("Get", db.remoteRead, func(ctx context.Context) error {
				_, err := s.Get(ctx, "Miami")
				return err
			})
			op("List", db.remoteRead, func(ctx context.Context) error {
				_, _, err := s.List(ctx, teams.ListOptions{})
				return err
			})
			op("Delete", true, func(ctx context.Context) error {
				_, err := s.Delete(ctx, "Miami")
				return err
			})
		})
	}
}
