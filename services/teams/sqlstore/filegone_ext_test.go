package sqlstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

// SQLite's files deleted, or another moved over one, under a running store:
// its connections keep the file they opened, which no later start of the
// server opens. A write acknowledged from then on would be lost at the
// next start, and a read would answer from a file no other process reads.
// The store refuses both, with UNAVAILABLE (teams.ErrStoreLost), closes
// its Lost channel and logs the file and the remedy; its feed goes down,
// so a cache on it reads the store too. A write is refused from the moment the file is gone (it looks
// after its commit), a read within the feed's bound.
func TestSQLiteFileGoneUnderTheStore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// replace makes teams.db in dir another file, or none.
		replace func(t *testing.T, dir string)
		// after is Chicago's nickname in the file at the path once both
		// stores have closed: the refused Put, which had committed (it
		// may have been made), is there only when teams.db stayed, as
		// the last close copies the old -wal into it.
		after string
	}{
		{"deleted", func(t *testing.T, dir string) {
			removeDatabase(t, dir)
		}, "Jackals"}, // a new file, seeded
		{"its -wal and -shm deleted", func(t *testing.T, dir string) {
			// The commits not yet checkpointed into teams.db are in the
			// -wal: a process starting now would not see them.
			for _, name := range []string{sqlstore.SQLiteFile + "-wal", sqlstore.SQLiteFile + "-shm"} {
				if err := os.Remove(filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
		}, "Lost"},
		{"replaced by a backup", func(t *testing.T, dir string) {
			backup := filepath.Join(t.TempDir(), "backup.db")
			copyDatabase(t, filepath.Join(dir, sqlstore.SQLiteFile), backup, false)
			removeDatabase(t, dir)
			if err := os.Rename(backup, filepath.Join(dir, sqlstore.SQLiteFile)); err != nil {
				t.Fatal(err)
			}
		}, "Bears"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Two stores on the file stand for two processes: w only
			// writes after the file went, r only reads.
			dir := t.TempDir()
			w, r := openSQLite(t, dir), openSQLite(t, dir)
			cw, cr := teams.NewCache(w, 100, nil), teams.NewCache(r, 100, nil)
			closed := false
			closeAll := func() {
				if !closed {
					closed = true
					_, _, _, _ = cw.Close(), cr.Close(), w.Close(), r.Close()
				}
			}
			defer closeAll()
			waitLive(t, w.Feed())
			waitLive(t, r.Feed())
			ctx := t.Context()
			if _, _, err := cw.Put(ctx, teams.Team{City: "Chicago", Nickname: "Bears"}); err != nil {
				t.Fatal(err)
			}
			chicagoWithin(t, cr, r, "before the file went", "Bears")

			tc.replace(t, dir)
			// Refused after its commit: it may have been made. The Delete
			// after it is refused before it is made.
			_, _, err := cw.Put(ctx, teams.Team{City: "Chicago", Nickname: "Lost"})
			wantGone(t, "Put", err)
			if !errors.Is(err, teams.ErrMaybeMade) {
				t.Errorf("Put refused after its commit: %v, want ErrMaybeMade", err)
			}
			_, err = cw.Delete(ctx, "Chicago")
			wantGone(t, "Delete", err)
			if errors.Is(err, teams.ErrMaybeMade) {
				t.Errorf("Delete refused before it was made: %v, want no ErrMaybeMade", err)
			}

			deadline := time.Now().Add(teams.FeedBound)
			for {
				_, err := cr.Get(ctx, "Chicago")
				if errors.Is(err, teams.ErrUnavailable) {
					wantGone(t, "Get", err)
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("Get %v after the file went: %v, want ErrUnavailable", teams.FeedBound, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if r.Feed().Live() {
				t.Error("the feed is live on a file no longer at its path")
			}
			for name, s := range map[string]*sqlstore.Store{"the writer": w, "the reader": r} {
				select {
				case <-s.Lost():
				default:
					t.Errorf("%s refuses calls, and its Lost is not closed", name)
				}
			}
			_, _, err = r.List(ctx, teams.ListOptions{})
			wantGone(t, "List", err)

			h := teams.NewHandler(cw, "token")
			req := connect.NewRequest(&teamsv1.PutTeamRequest{City: "Gotham", Nickname: "Bats"})
			req.Header().Set("Authorization", "Bearer token")
			if _, err := h.PutTeam(ctx, req); connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "until it restarts") {
				t.Errorf("PutTeam: %v, want unavailable until it restarts", err)
			}
			get := connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"})
			if _, err := teams.NewHandler(cr, "").GetTeam(ctx, get); connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "until it restarts") {
				t.Errorf("GetTeam: %v, want unavailable until it restarts", err)
			}

			// The next start, once both have stopped, opens the file at the
			// path: the writes refused before they were made are not there.
			closeAll()
			next := openSQLite(t, dir)
			defer next.Close()
			if got, err := next.Get(ctx, "Chicago"); err != nil || got.Nickname != tc.after {
				t.Errorf("the file at the path holds Chicago %+v, %v; want %q", got, err, tc.after)
			}
			if _, err := next.Get(ctx, "Gotham"); !errors.Is(err, teams.ErrNotFound) {
				t.Errorf("Gotham in the file at the path: %v, want not found", err)
			}
		})
	}
}

// A Delete that found no team in a file already gone is refused, as
// every call then, but it deleted nothing: its answer does not say that
// it may have been made.
func TestSQLiteDeleteOfNoTeamAfterTheFileWent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openSQLite(t, dir)
	defer s.Close()
	removeDatabase(t, dir)
	_, err := s.Delete(t.Context(), "Nowhere")
	wantGone(t, "Delete of no team", err)
	if errors.Is(err, teams.ErrMaybeMade) {
		t.Errorf("Delete of no team: %v, want no ErrMaybeMade", err)
	}
}

// removeDatabase deletes teams.db and its -wal and -shm files in dir.
func removeDatabase(t *testing.T, dir string) {
	t.Helper()
	for _, name := range []string{sqlstore.SQLiteFile, sqlstore.SQLiteFile + "-wal", sqlstore.SQLiteFile + "-shm"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

// wantGone fails the test unless err is the store's refusal of a file
// that is gone from its path.
func wantGone(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, teams.ErrUnavailable) || !errors.Is(err, teams.ErrStoreLost) {
		t.Errorf("%s after the file went: %v, want ErrUnavailable and ErrStoreLost", op, err)
	}
}
