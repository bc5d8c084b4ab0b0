package sqlitevfs

import "syscall"

// Fsync is the VFS's fsync, for the tests.
var Fsync = fsync

// ResultErr is resultErr, for the tests.
var ResultErr = resultErr

// FailFsyncs makes every fsync through the VFS fail with errno until the
// returned function is called.
func FailFsyncs(errno syscall.Errno) (restore func()) {
	failWith.Store(int32(errno))
	return func() { failWith.Store(0) }
}

// AIO reports whether this kernel accepted the AIO context (after the
// first fsync).
func AIO() bool { return aioCtx != nil }
