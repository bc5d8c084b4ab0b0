package teams_test

import (
	"testing"

	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/storetest"
)

func TestMemStoreSuite(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(*testing.T) teams.Store { return teams.NewMemStore(teams.TutorialTeams) })
}
