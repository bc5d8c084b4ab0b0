package sqlstore

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/switchyard/switchyard/services/teams"
)

// dbFile watches that SQLite's paths still name the files the store
// opened: teams.db, and its -wal and -shm files, where commits wait for a
// checkpoint and the processes sharing the file coordinate. SQLite never
// deletes or recreates them while a connection of this process is open
// (the writer's and the feed's never close). A file deleted, or another
// renamed over it, stays open in this process: its connections go on
// reading and committing to the old one, which no later start (and no
// other process) opens, so every write acknowledged from then on would be
// lost, and every read would answer from data no other process serves.
// Once a path names another file, or none, the store refuses every call
// with teams.ErrStoreLost until the process is restarted; the file moved
// back does not undo it, as writes meanwhile may have gone either way.
//
// Writes look after their commit (three stats, beside the commit's
// fsync), so none is acknowledged once a file has gone; reads look at
// what the change feed's last poll found (an atomic load), so they are
// refused within the feed's bound.
type dbFile struct {
	files  []watchedFile
	logger *slog.Logger
	// feed, the store's, is taken down the moment a file is found gone,
	// so that a cache on it stops serving hits before the feed's next
	// poll fails.
	feed *teams.Feed
	gone atomic.Pointer[lostError]
	lost chan struct{} // closed when gone is first set
}

type watchedFile struct {
	path   string
	opened os.FileInfo
}

// openedFiles records the files at paths as the ones the store opened;
// one not there is not watched.
func openedFiles(logger *slog.Logger, paths ...string) *dbFile {
	f := &dbFile{logger: logger, lost: make(chan struct{})}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			f.files = append(f.files, watchedFile{path: p, opened: fi})
		}
	}
	return f
}

// lostError is the store's refusal once a file has gone: UNAVAILABLE to
// callers (teams.ErrUnavailable), which only a restart gets past
// (teams.ErrStoreLost).
type lostError struct{ msg string }

func (e *lostError) Error() string { return e.msg }

func (e *lostError) Is(target error) bool {
	return target == teams.ErrUnavailable || target == teams.ErrStoreLost
}

// check looks at the paths now; the error is the store's refusal once one
// names another file or none. A nil f (PostgreSQL) never refuses.
func (f *dbFile) check() error {
	if f == nil {
		return nil
	}
	if err := f.err(); err != nil {
		return err
	}
	for _, w := range f.files {
		fi, err := os.Stat(w.path)
		var what string
		switch {
		case err == nil && os.SameFile(fi, w.opened):
			continue
		case err == nil:
			what = "replaced by another file"
		case errors.Is(err, fs.ErrNotExist):
			what = "deleted"
		default:
			// Not looked at (a permission taken away, say): the file
			// may still be there, and the writes' own errors say the
			// rest.
			continue
		}
		gone := &lostError{fmt.Sprintf("%s was %s while this process had it open, and its connections still use the old file: "+
			"the team store refuses every call until the process restarts (no write was acknowledged since)", w.path, what)}
		if f.gone.CompareAndSwap(nil, gone) {
			f.logger.Error("team store refuses every call: its SQLite files are no longer at their paths; the process must restart", "path", w.path, "err", gone.msg)
			close(f.lost)
			if f.feed != nil {
				f.feed.Reset(false)
			}
		}
		return f.err()
	}
	return nil
}

// checkCommitted is check after a commit: the refusal then says that the
// write may have been made. Where only the -wal or -shm went, teams.db is
// still at its path, and the store's close copies the old -wal's commits
// into it, this one included; where teams.db went, the write is in a file
// no start opens.
func (f *dbFile) checkCommitted() error {
	if err := f.check(); err != nil {
		return fmt.Errorf("%w: %w", teams.ErrMaybeMade, err)
	}
	return nil
}

// err is the store's refusal once check has found a file gone, else nil.
func (f *dbFile) err() error {
	if f == nil {
		return nil
	}
	if e := f.gone.Load(); e != nil {
		return e
	}
	return nil
}

// Lost is closed once the store refuses every call with teams.ErrStoreLost
// (a SQLite file deleted or replaced under it); on PostgreSQL it is nil,
// which is never closed.
func (s *Store) Lost() <-chan struct{} {
	if s.file == nil {
		return nil
	}
	return s.file.lost
}
