package sqlitevfs

import (
	"fmt"
	"sync"
	"syscall"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// name is the VFS Register adds.
const name = "switchyard-unix"

var registered struct {
	once sync.Once
	err  error

	unixOpen uintptr // the unix VFS's xOpen

	mu sync.Mutex
	// ours maps each io_methods table the unix VFS hands out to our copy;
	// syncOf maps our copy to the original's xSync.
	ours, syncOf map[uintptr]uintptr
}

// Register adds a SQLite VFS that is the unix VFS in every respect but
// one: a file's xSync runs its fsync so that the calling goroutine parks
// until the disk is done (fsync_linux.go) instead of blocking its thread
// while that thread holds one of the Go scheduler's Ps. It returns the
// VFS's name, for a connection's "vfs" parameter.
//
// Why: SQLite with synchronous=FULL fsyncs the WAL at every commit. In a
// pure Go SQLite that fsync is a plain system call; the thread making it
// keeps its P until the runtime's monitor takes it back, which when the
// monitor sleeps long can be the whole fsync. With GOMAXPROCS=1 every
// other call waits that long. What SQLite asks for does not change: the
// same files are synced at the same moments, each xSync returns only when
// its fsync has, and a failure is SQLITE_IOERR_FSYNC with the errno kept,
// as unixSync reports it. A sync that must also sync the directory (once,
// after a journal or WAL is created) runs unixSync itself.
func Register() (string, error) {
	r := &registered
	r.once.Do(func() { r.err = register() })
	return name, r.err
}

func register() error {
	tls := libc.NewTLS()
	defer tls.Close()
	zUnix, err := libc.CString("unix")
	if err != nil {
		return err
	}
	defer libc.Xfree(tls, zUnix)
	unix := sqlite3.Xsqlite3_vfs_find(tls, zUnix)
	if unix == 0 {
		return fmt.Errorf("sqlitevfs: SQLite has no unix VFS")
	}
	zName, err := libc.CString(name) // kept: the VFS lives as long as the process
	if err != nil {
		return err
	}
	vfs := libc.Xmalloc(tls, libc.Tsize_t(unsafe.Sizeof(sqlite3.Tsqlite3_vfs{})))
	if vfs == 0 {
		return fmt.Errorf("sqlitevfs: out of memory")
	}
	v := (*sqlite3.Tsqlite3_vfs)(cmem(vfs))
	*v = *(*sqlite3.Tsqlite3_vfs)(cmem(unix))
	v.FpNext = 0
	v.FzName = zName
	registered.unixOpen = v.FxOpen
	registered.ours = map[uintptr]uintptr{}
	registered.syncOf = map[uintptr]uintptr{}
	v.FxOpen = cpointer(openFunc(xOpen))
	if rc := sqlite3.Xsqlite3_vfs_register(tls, vfs, 0); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("sqlitevfs: registering the VFS: SQLite result %d", rc)
	}
	return nil
}

// xOpen opens a file with the unix VFS, then gives it our copy of its
// io_methods.
func xOpen(tls *libc.TLS, vfs, zName, file uintptr, flags int32, pOutFlags uintptr) int32 {
	rc := cfunc[openFunc](registered.unixOpen)(tls, vfs, zName, file, flags, pOutFlags)
	f := (*sqlite3.Tsqlite3_file)(cmem(file))
	if rc != sqlite3.SQLITE_OK || f.FpMethods == 0 {
		return rc
	}
	m, err := methodsFor(tls, f.FpMethods)
	if err != nil {
		_ = callClose(tls, f.FpMethods, file)
		f.FpMethods = 0
		return sqlite3.SQLITE_NOMEM
	}
	f.FpMethods = m
	return rc
}

// methodsFor returns our copy of the io_methods table orig, made on first
// use (the unix VFS has a handful of them, one per locking style).
func methodsFor(tls *libc.TLS, orig uintptr) (uintptr, error) {
	r := &registered
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, ok := r.ours[orig]; ok {
		return m, nil
	}
	m := libc.Xmalloc(tls, libc.Tsize_t(unsafe.Sizeof(sqlite3.Tsqlite3_io_methods{})))
	if m == 0 {
		return 0, fmt.Errorf("sqlitevfs: out of memory")
	}
	t := (*sqlite3.Tsqlite3_io_methods)(cmem(m))
	*t = *(*sqlite3.Tsqlite3_io_methods)(cmem(orig))
	r.syncOf[m] = t.FxSync
	t.FxSync = cpointer(syncFunc(xSync))
	r.ours[orig] = m
	return m, nil
}

func callClose(tls *libc.TLS, methods, file uintptr) int32 {
	xClose := (*sqlite3.Tsqlite3_io_methods)(cmem(methods)).FxClose
	return cfunc[closeFunc](xClose)(tls, file)
}

// xSync is unixSync with its fsync parked (see Register).
func xSync(tls *libc.TLS, file uintptr, flags int32) int32 {
	f := (*sqlite3.TunixFile)(cmem(file))
	if f.FctrlFlags&sqlite3.UNIXFILE_DIRSYNC != 0 {
		registered.mu.Lock()
		orig := registered.syncOf[f.FpMethod]
		registered.mu.Unlock()
		return cfunc[syncFunc](orig)(tls, file, flags)
	}
	if err := fsync(int(f.Fh)); err != nil {
		errno, ok := err.(syscall.Errno)
		if !ok {
			errno = syscall.EIO
		}
		f.FlastErrno = int32(errno)
		return sqlite3.SQLITE_IOERR_FSYNC
	}
	return sqlite3.SQLITE_OK
}

// cmem is the memory at p: either SQLite allocated it with
// modernc.org/libc's allocator, outside the Go heap, or it is a static of
// the translated C (the unix VFS and its io_methods tables), a Go global.
// The garbage collector moves neither and frees neither, so an address
// kept as a uintptr stays valid.
func cmem(p uintptr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(&p))
}

// The signatures of the SQLite methods used here, as modernc.org/sqlite
// translates them: the TLS first, pointers as uintptr.
type (
	openFunc  = func(tls *libc.TLS, vfs, zName, file uintptr, flags int32, pOutFlags uintptr) int32
	syncFunc  = func(tls *libc.TLS, file uintptr, flags int32) int32
	closeFunc = func(tls *libc.TLS, file uintptr) int32
)

// cpointer is f as a SQLite function pointer: modernc.org/sqlite calls a
// function pointer by reading it back as a Go func value, so the pointer
// is the func value's word. f must be a top-level function, whose func
// value is static.
func cpointer[F any](f F) uintptr {
	return *(*uintptr)(unsafe.Pointer(&f))
}

// cfunc is the function SQLite's function pointer p stands for.
func cfunc[F any](p uintptr) F {
	return *(*F)(unsafe.Pointer(&p))
}
