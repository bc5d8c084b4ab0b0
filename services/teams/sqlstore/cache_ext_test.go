package sqlstore_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/switchyard/switchyard/internal/pgtest"
	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/storetest"
)

// A teams.Cache on either database passes the stores' suite (the cache's
// own rules are tested in services/teams and, across processes, in
// e2e/scale).
func cached(s teams.Watchable) teams.Store {
	return teams.NewCache(s, 8, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestSQLiteCacheSuite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) teams.Store { return cached(openSQLite(t, t.TempDir())) })
}

func TestPostgresCacheSuite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) teams.Store { return cached(openPostgres(t, pgtest.Database(t))) })
}
