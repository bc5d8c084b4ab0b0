package sqlstore_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// A data directory whose name holds what a URI gives a meaning ('?', '#',
// '%', a space) keeps teams.db in that directory. The file name went to
// SQLite as a URI unescaped: "/srv/q?x" kept the teams in a file /srv/q,
// beside an empty data directory (and every "/srv/q?..." shared it), and
// "/srv/100%25" did not open.
func TestSQLiteDataDirectoryNameIsNotAURI(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"q?x=1", "h#ash", "pct%41x", "pct%zz", "sp ace ünï"} {
		parent := t.TempDir()
		dir := filepath.Join(parent, name)
		s := openSQLite(t, dir)
		if _, _, err := s.Put(t.Context(), teams.Team{City: "Miami", Nickname: "Sharks"}); err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(dir, sqlstore.SQLiteFile)); err != nil {
			t.Errorf("%q: no teams.db in the data directory: %v", name, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("%q: the data directory's parent holds %q, want the data directory alone", name, names)
		}
	}
}
