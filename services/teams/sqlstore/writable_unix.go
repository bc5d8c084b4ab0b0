//go:build unix

package sqlstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// checkWritable fails, naming the path and the reason, when this process
// cannot write the data directory or the database files in it. Without it
// SQLite says only "unable to open database file (14)" for a directory it
// cannot create teams.db in, and opens a read-only teams.db read-only
// without a word: the server then starts and fails each write as internal.
// In WAL mode SQLite writes teams.db-wal and teams.db-shm beside teams.db,
// even to read, so the directory and all three files must be writable.
//
// It asks the kernel with access(2), which opens no file: closing a file
// descriptor would drop the POSIX locks another Store in this process
// holds on the same database. access(2) also sees what permission bits do
// not show: a read-only file system (EROFS) and immutable files (EPERM),
// which stop root as well.
func checkWritable(dir string) error {
	const w, rw, x = 0x2, 0x6, 0x1 // W_OK, R_OK|W_OK, X_OK
	if err := syscall.Access(dir, w|x); err != nil {
		return notWritable("data directory "+dir, err)
	}
	for _, name := range []string{SQLiteFile, SQLiteFile + "-wal", SQLiteFile + "-shm"} {
		path := filepath.Join(dir, name)
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := syscall.Access(path, rw); err != nil {
			return notWritable(path, err)
		}
	}
	return nil
}

func notWritable(what string, err error) error {
	return fmt.Errorf("%s is not writable by this process (uid %d): %w; SQLite must write the database, its -wal and -shm files and the directory holding them",
		what, os.Geteuid(), err)
}
