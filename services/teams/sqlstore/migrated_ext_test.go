package sqlstore_test

import (
	"testing"
)

// A start tells whether it migrated the database, and from which schema
// (0: it created it), for its start line: a start that migrated looked
// like any other, and an operator could not tell from the log when an
// upgrade changed the schema.
func TestSQLiteMigratedFrom(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSQLite(t, dir)
	if from, ok := s.MigratedFrom(); !ok || from != 0 {
		t.Errorf("a new database: MigratedFrom = %d, %v; want 0, true", from, ok)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openSQLite(t, dir)
	defer func() { _ = s.Close() }()
	if from, ok := s.MigratedFrom(); ok {
		t.Errorf("a database up to date: MigratedFrom = %d, %v; want false", from, ok)
	}
}
