// Package sqlitevfs registers a SQLite VFS (for modernc.org/sqlite, the
// pure Go SQLite) whose fsyncs wait without holding a Go scheduler P, so
// that a durable commit does not stall every other goroutine of a process
// running on one core.
package sqlitevfs
