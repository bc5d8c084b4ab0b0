package sqlstore_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/services/teams"
)

// A write the disk has no room for fails as teams.ErrStorageFull, which
// names the data directory to free space in, and was not made; reads go
// on, and writes resume once there is room again, without a restart.
func TestSQLiteFullDiskFailsWritesPrecisely(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSQLite(t, dir)
	defer func() { _ = s.Close() }()
	if err := s.LimitPagesForTest(t.Context(), 12); err != nil {
		t.Fatal(err)
	}
	var failed error
	var made int
	for i := range 2000 {
		if _, _, err := s.Put(t.Context(), teams.Team{City: fmt.Sprintf("City %d with a name long enough to fill pages", i), Nickname: "N"}); err != nil {
			failed = err
			break
		}
		made++
	}
	if failed == nil {
		t.Fatal("2000 Puts into 12 pages all succeeded")
	}
	if !errors.Is(failed, teams.ErrStorageFull) || errors.Is(failed, teams.ErrUnavailable) || errors.Is(failed, teams.ErrMaybeMade) {
		t.Fatalf("Put on a full disk: %v, want teams.ErrStorageFull alone", failed)
	}
	if !strings.Contains(failed.Error(), dir) {
		t.Errorf("Put on a full disk: %q does not name the data directory %s", failed, dir)
	}
	if _, err := s.Delete(t.Context(), "no such city"); !errors.Is(err, teams.ErrNotFound) {
		t.Errorf("Delete of no team on a full disk: %v, want not found", err)
	}
	if _, err := s.Get(t.Context(), fmt.Sprintf("City %d with a name long enough to fill pages", made)); !errors.Is(err, teams.ErrNotFound) {
		t.Errorf("the write that failed: Get says %v, want not found", err)
	}
	if _, err := s.Get(t.Context(), "City 0 with a name long enough to fill pages"); err != nil {
		t.Errorf("a read on a full disk: %v", err)
	}
	if err := s.LimitPagesForTest(t.Context(), 1<<30); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(t.Context(), teams.Team{City: "After", Nickname: "Room"}); err != nil {
		t.Errorf("Put once there is room again: %v", err)
	}
}
