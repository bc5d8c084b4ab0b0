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

// dbFile watches that SQLite's path still names the file the store
// opened. A file deleted, or another renamed over it, stays open in this
// process: its connections go on reading and committing to the old file,
// which no later start opens, so every write acknowledged from then on
// would be lost, and every read would answer from data no other process
// serves. Once the path names another file, or none, the store refuses
// every call with teams.ErrStoreLost until the process is restarted; the
// file moved back does not undo it, as writes meanwhile may have gone
// either way.
//
// Writes look after their commit (a stat, beside the commit's fsync), so
// none is acknowledged once the file has gone; reads look at what the
// change feed's last poll found (an atomic load), so they are refused
// within the feed's bound.
type dbFile struct {
	path   string
	opened os.FileInfo
	logger *slog.Logger
	// feed, the store's, is taken down the moment the file is found
	// gone, so that a cache on it stops serving hits before the feed's
	// next poll fails.
	feed *teams.Feed
	gone atomic.Pointer[error]
	lost   chan struct{} // closed with the first error stored in gone
}

// openedFile records the file at path as the one the store opened.
func openedFile(path string, logger *slog.Logger) (*dbFile, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	return &dbFile{path: path, opened: fi, logger: logger, lost: make(chan struct{})}, nil
}

// check looks at the path now; the error is the store's refusal once the
// path names another file or none. A nil f (PostgreSQL) never refuses.
func (f *dbFile) check() error {
	if f == nil {
		return nil
	}
	if err := f.err(); err != nil {
		return err
	}
	fi, err := os.Stat(f.path)
	var what string
	switch {
	case err == nil && os.SameFile(fi, f.opened):
		return nil
	case err == nil:
		what = "replaced by another file"
	case errors.Is(err, fs.ErrNotExist):
		what = "deleted"
	default:
		// Not looked at (a permission taken away, say): the file may
		// still be there, and the writes' own errors say the rest.
		return nil
	}
	gone := fmt.Errorf("%w: %w: %s was %s while this process had it open, and its connections still use the old file: "+
		"nothing written since was acknowledged", teams.ErrUnavailable, teams.ErrStoreLost, f.path, what)
	if f.gone.CompareAndSwap(nil, &gone) {
		f.logger.Error("team store refuses every call: its SQLite file is no longer at its path; restart the process", "path", f.path, "err", gone)
		if f.feed != nil {
			f.feed.Reset(false)
		}
		close(f.lost)
	}
	return f.err()
}

// err is the store's refusal once check has found the file gone, else nil.
func (f *dbFile) err() error {
	if f == nil {
		return nil
	}
	if p := f.gone.Load(); p != nil {
		return *p
	}
	return nil
}

// Lost is closed once the store refuses every call with teams.ErrStoreLost
// (SQLite's file deleted or replaced under it); on PostgreSQL it is nil,
// which is never closed.
func (s *Store) Lost() <-chan struct{} {
	if s.file == nil {
		return nil
	}
	return s.file.lost
}
