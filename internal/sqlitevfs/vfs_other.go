//go:build !linux

package sqlitevfs

// Register adds nothing outside Linux: connections use SQLite's default
// VFS, whose fsync blocks its thread (see the Linux Register).
func Register() (string, error) { return "", nil }

// Fsyncs reports no fsyncs: the VFS is not registered here.
func Fsyncs() (parked, blocking int64) { return 0, 0 }
