package sqlstore_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/switchyard/switchyard/services/teams"
)

// On Linux the SQLite store's commits sync through internal/sqlitevfs:
// each acknowledged Put took at least one of its fsyncs. (Not parallel:
// the counts are the process's.)
func TestSQLiteCommitsSyncThroughTheVFS(t *testing.T) {
	s := openSQLite(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	parked0, blocking0, ok := s.FsyncStats()
	if runtime.GOOS != "linux" {
		if ok {
			t.Errorf("FsyncStats ok on %s, where the VFS is not registered", runtime.GOOS)
		}
		return
	}
	if !ok {
		t.Fatal("FsyncStats not ok: the store does not use internal/sqlitevfs")
	}
	const puts = 4
	for i := range puts {
		city := fmt.Sprintf("Fsync %d", i)
		if _, _, err := s.Put(t.Context(), teams.Team{City: city, Nickname: "Syncers"}); err != nil {
			t.Fatalf("Put %s: %v", city, err)
		}
	}
	parked1, blocking1, _ := s.FsyncStats()
	if n := (parked1 - parked0) + (blocking1 - blocking0); n < puts {
		t.Errorf("%d Puts, one at a time, took %d fsyncs through the VFS, want at least %d", puts, n, puts)
	}
	t.Logf("fsyncs: %d parked, %d blocking", parked1-parked0, blocking1-blocking0)
}
