package sqlstore_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// A process that keeps writing keeps its write-ahead log bounded: SQLite
// copies the log into teams.db (a checkpoint) once a commit leaves it
// above 1000 pages, and then starts it over. Writes one at a time (a Put
// that shares no commit, a Delete) once committed as their RETURNING
// statement was reset, which runs no checkpoint: the log grew by every
// such write for as long as the process ran (16 MB after 1200 Puts of a
// 40 KB table), and every read and every start went through it.
func TestSQLiteWriteAheadLogIsCheckpointed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSQLite(t, dir)
	defer func() { _ = s.Close() }()
	const n = 1500
	// 1000 pages of 4 KiB, the automatic checkpoint's threshold, and room
	// for the commit that passes it.
	const limit = 1100 * 4096
	walAtMost := func(after string) {
		t.Helper()
		wal, err := os.Stat(filepath.Join(dir, sqlstore.SQLiteFile+"-wal"))
		if err != nil {
			t.Fatal(err)
		}
		if wal.Size() > limit {
			t.Errorf("teams.db-wal is %d bytes after %s, above %d: it is not checkpointed", wal.Size(), after, limit)
		}
	}
	for i := range n {
		if _, _, err := s.Put(t.Context(), teams.Team{City: fmt.Sprintf("City %d", i), Nickname: "N"}); err != nil {
			t.Fatal(err)
		}
	}
	walAtMost(fmt.Sprintf("%d Puts", n))

	// Empty the log, so that the Deletes alone must keep it bounded.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlstore.SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	if _, err := db.ExecContext(t.Context(), `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := s.Delete(t.Context(), fmt.Sprintf("City %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	walAtMost(fmt.Sprintf("%d Deletes", n))
}
