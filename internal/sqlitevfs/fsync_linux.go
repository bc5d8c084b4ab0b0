package sqlitevfs

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Linux AIO (linux/aio_abi.h). Since Linux 4.18 an IOCB_CMD_FSYNC is
// queued to a kernel worker: io_submit returns at once, and the result
// arrives as an io_event, announced on an eventfd that Go's network poller
// watches. The goroutine that waits for it is parked like one that waits
// for a socket, so the Go scheduler's P runs other goroutines meanwhile.
const (
	iocbCmdFsync  = 2
	iocbFlagResfd = 1
	aioQueueDepth = 64 // fsyncs in flight at once; more wait their turn
)

// iocb is struct iocb. aio_key and aio_rw_flags swap places on big-endian
// machines; both are zero here, so the layout serves either.
type iocb struct {
	data      uint64
	key       uint32
	rwFlags   uint32
	opcode    uint16
	reqprio   int16
	fildes    uint32
	buf       uint64
	nbytes    uint64
	offset    int64
	reserved2 uint64
	flags     uint32
	resfd     uint32
}

// ioEvent is struct io_event.
type ioEvent struct {
	data, obj uint64
	res, res2 int64
}

// aio is the process's one AIO context and the goroutine that hands each
// completion to the fsync that waits for it.
type aio struct {
	ctx uintptr // aio_context_t
	// The eventfd: its number for the iocbs, and the file the complete
	// goroutine reads through the network poller. (File.Fd would put it
	// into blocking mode, so the number is kept apart.)
	resfd uint32
	efd   *os.File
	slots chan struct{}

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan int64
}

var (
	aioOnce sync.Once
	aioCtx  *aio // nil where this kernel (or a seccomp filter) refuses AIO

	// How the fsyncs went: parked in the poller, or made by fsync(2)
	// because AIO was refused.
	parked, blocking atomic.Int64

	// failWith, when not 0, is the errno every fsync fails with: the
	// package's tests inject a failing disk with it.
	failWith atomic.Int32
)

// Fsyncs reports the fsyncs made through the VFS since the process
// started: parked (the goroutine waited in the network poller) and
// blocking (AIO was refused, so fsync(2) held its thread and P).
func Fsyncs() (parkedN, blockingN int64) {
	return parked.Load(), blocking.Load()
}

// fsync makes fd's data and metadata durable, as fsync(2) does, and
// returns its error. Where AIO is refused it is fsync(2) itself.
func fsync(fd int) error {
	if e := failWith.Load(); e != 0 {
		return syscall.Errno(e)
	}
	aioOnce.Do(func() { aioCtx = newAIO() })
	if aioCtx != nil {
		if err, ok := aioCtx.fsync(fd); ok {
			parked.Add(1)
			return err
		}
	}
	blocking.Add(1)
	for {
		if err := syscall.Fsync(fd); err != syscall.EINTR {
			return err
		}
	}
}

func newAIO() *aio {
	var ctx uintptr
	if _, _, e := syscall.Syscall(syscall.SYS_IO_SETUP, aioQueueDepth, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		return nil
	}
	const efdNonblock, efdCloexec = syscall.O_NONBLOCK, syscall.O_CLOEXEC
	efd, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, efdNonblock|efdCloexec, 0)
	if e != 0 {
		_, _, _ = syscall.Syscall(syscall.SYS_IO_DESTROY, ctx, 0, 0)
		return nil
	}
	a := &aio{
		ctx:     ctx,
		resfd:   uint32(efd),
		efd:     os.NewFile(efd, "aio-eventfd"), // non-blocking: the poller watches it
		slots:   make(chan struct{}, aioQueueDepth),
		waiting: make(map[uint64]chan int64),
	}
	go a.complete()
	return a
}

// fsync submits one fsync and parks until it completes. ok is false when
// the kernel refused the submission (this file system has no AIO fsync,
// or the queue is somehow full): the caller then runs fsync(2) itself,
// which gives the same answer as it always did.
func (a *aio) fsync(fd int) (err error, ok bool) {
	a.slots <- struct{}{}
	defer func() { <-a.slots }()
	done := make(chan int64, 1)
	a.mu.Lock()
	a.next++
	id := a.next
	a.waiting[id] = done
	a.mu.Unlock()
	cb := iocb{data: id, opcode: iocbCmdFsync, fildes: uint32(fd), flags: iocbFlagResfd, resfd: a.resfd}
	cbs := [1]*iocb{&cb}
	for {
		n, _, e := syscall.Syscall(syscall.SYS_IO_SUBMIT, a.ctx, 1, uintptr(unsafe.Pointer(&cbs[0])))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 || n != 1 {
			a.mu.Lock()
			delete(a.waiting, id)
			a.mu.Unlock()
			return nil, false
		}
		break
	}
	return resultErr(<-done), true
}

// resultErr is an io_event's result as fsync(2) would return it.
func resultErr(res int64) error {
	if res < 0 {
		return syscall.Errno(-res)
	}
	return nil
}

// complete reads the eventfd (parked in the poller while nothing is
// done), collects the finished fsyncs and wakes their callers. It runs
// for the life of the process, as the AIO context does.
func (a *aio) complete() {
	var count [8]byte
	var events [aioQueueDepth]ioEvent
	var zero syscall.Timespec
	for {
		// The count only wakes this loop: io_getevents says what is done.
		if _, err := a.efd.Read(count[:]); errors.Is(err, os.ErrClosed) {
			return
		}
		for {
			n, _, e := syscall.Syscall6(syscall.SYS_IO_GETEVENTS, a.ctx, 0, uintptr(len(events)),
				uintptr(unsafe.Pointer(&events[0])), uintptr(unsafe.Pointer(&zero)), 0)
			if e == syscall.EINTR {
				continue
			}
			if e != 0 || n == 0 {
				break
			}
			a.mu.Lock()
			for _, ev := range events[:n] {
				if done, ok := a.waiting[ev.data]; ok {
					delete(a.waiting, ev.data)
					done <- ev.res
				}
			}
			a.mu.Unlock()
		}
	}
}
