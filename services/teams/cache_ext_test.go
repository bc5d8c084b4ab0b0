package teams_test

import (
	"io"
	"log/slog"
	"testing"

	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/storetest"
)

// A Cache is a Store like any other: it passes the stores' suite.
func TestCacheSuite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(*testing.T) teams.Store {
		return teams.NewCache(teams.NewMemStore(teams.TutorialTeams), 8, slog.New(slog.NewTextHandler(io.Discard, nil)))
	})
}
