package sqlitevfs_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/switchyard/switchyard/internal/sqlitevfs"
)

// counted runs f and returns how many fsyncs it parked and made blocking.
func counted(f func()) (parked, blocking int64) {
	p0, b0 := sqlitevfs.Fsyncs()
	f()
	p1, b1 := sqlitevfs.Fsyncs()
	return p1 - p0, b1 - b0
}

func tempFile(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	if _, err := f.WriteString("to be made durable\n"); err != nil {
		t.Fatal(err)
	}
	return f
}

// An fsync of a written file succeeds, and parks its goroutine in the
// poller wherever the kernel accepts AIO (Linux 4.18 and later, without a
// seccomp filter that refuses io_setup).
func TestFsyncParks(t *testing.T) {
	f := tempFile(t, "a")
	var err error
	parked, blocking := counted(func() { err = sqlitevfs.Fsync(int(f.Fd())) })
	if err != nil {
		t.Fatalf("fsync: %v", err)
	}
	if sqlitevfs.AIO() {
		if parked != 1 || blocking != 0 {
			t.Errorf("with AIO: %d parked and %d blocking fsyncs, want 1 and 0", parked, blocking)
		}
	} else {
		t.Logf("this kernel refuses AIO: fsync(2) is used")
		if parked != 0 || blocking != 1 {
			t.Errorf("without AIO: %d parked and %d blocking fsyncs, want 0 and 1", parked, blocking)
		}
	}
}

// Where an fsync cannot be made, the answer is fsync(2)'s own: a closed
// descriptor, and a pipe (which has no fsync).
func TestFsyncErrorsAreFsyncs(t *testing.T) {
	closed := tempFile(t, "closed")
	badFd := int(closed.Fd())
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for name, fd := range map[string]int{"closed descriptor": badFd, "pipe": int(r.Fd())} {
		want := syscall.Fsync(fd)
		if want == nil {
			t.Fatalf("%s: fsync(2) succeeded; the case needs one that fails", name)
		}
		if got := sqlitevfs.Fsync(fd); !errors.Is(got, want) {
			t.Errorf("%s: fsync = %v, want fsync(2)'s %v", name, got, want)
		}
	}
}

// An io_event's result is fsync(2)'s: 0, or a negated errno.
func TestResultErr(t *testing.T) {
	if err := sqlitevfs.ResultErr(0); err != nil {
		t.Errorf("result 0 = %v, want nil", err)
	}
	if err := sqlitevfs.ResultErr(-int64(syscall.EIO)); !errors.Is(err, syscall.EIO) {
		t.Errorf("result -EIO = %v, want EIO", err)
	}
}

// Many fsyncs at once, more than the AIO queue holds, each get their own
// answer.
func TestFsyncsAtOnce(t *testing.T) {
	const n = 200
	files := make([]*os.File, n)
	for i := range files {
		files[i] = tempFile(t, "f")
	}
	errs := make([]error, n)
	parked, blocking := counted(func() {
		var wg sync.WaitGroup
		for i, f := range files {
			wg.Go(func() { errs[i] = sqlitevfs.Fsync(int(f.Fd())) })
		}
		wg.Wait()
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("fsync %d: %v", i, err)
		}
	}
	if parked+blocking != n {
		t.Errorf("%d parked and %d blocking fsyncs, want %d in all", parked, blocking, n)
	}
}
