package sqlstore_test

import (
	"strings"
	"testing"

	"github.com/switchyard/switchyard/services/teams"
)

// ListTeams with a city_prefix reads only the keys that can start with
// it: the query bounds city_key on both sides of the prefix, so SQLite
// (and PostgreSQL) search the key's index between them. It filtered every
// key after the page token instead: with 300 000 teams a prefix no city
// has took 100 ms of PostgreSQL, for anyone who asks, as reads are open.
func TestSQLiteListByPrefixSearchesTheKeyRange(t *testing.T) {
	t.Parallel()
	s := openSQLite(t, t.TempDir())
	defer func() { _ = s.Close() }()
	for _, opts := range []teams.ListOptions{
		{Prefix: "zzz"},
		{Prefix: "new", Limit: 10},
		{Prefix: "new", Limit: 10, After: "new jersey"},
		{Prefix: "new", After: "a"},
	} {
		plan, err := s.ListPlanForTest(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, "city_key>") || !strings.Contains(plan, "city_key<") {
			t.Errorf("List(%+v): plan %q searches no range of city_key bounded on both sides", opts, plan)
		}
	}
}
