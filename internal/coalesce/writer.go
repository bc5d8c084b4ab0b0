// Package coalesce batches many small writes into few: a Writer hands
// them to one goroutine, which writes whatever has accumulated while it
// was inside its previous write. The switchyard binary writes its log lines
// through one, and the transport's adapter for net/http's HTTP/2 server
// (internal/h2's BufferedListener) its connections' writes.
package coalesce

import (
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// coalesceBatch is the batch size below which the writer goroutine yields
// once before writing.
const coalesceBatch = 32 << 10

// ErrClosed is returned by writes to a closed Writer.
var ErrClosed = errors.New("write after close")

// Writer hands writes to one writer goroutine: Write copies and
// returns at once, and whatever is written while the goroutine is inside a
// write of the underlying writer goes out in its next one. Many small
// writes (HTTP/2 frames, log lines) then cost one system call per batch
// rather than one each, with no timer: an idle writer writes at once.
// Nothing is dropped; past maxPending bytes, Write waits (NewWriter), or
// drops the write and counts it (NewDroppingWriter).
type Writer struct {
	w          io.Writer
	maxPending int
	drop       bool         // past maxPending, drop rather than wait
	dropped    atomic.Int64 // writes dropped

	mu      sync.Mutex
	cond    sync.Cond // signalled when pending grows or drains, or on close
	pending []byte    // written, not yet handed to w
	spare   []byte    // the goroutine's buffer, swapped with pending
	writing bool      // the goroutine is inside w.Write
	err     error     // the first error of w; later writes return it
	closed  bool
	done    chan struct{} // closed when the goroutine ends

	report     func(dropped int64) []byte // ReportDrops
	unreported int64                      // writes dropped since the last report

	// actions run between two writes (AfterPending): each once the first
	// at bytes of pending have been handed to w, before the rest.
	actions []pendingAction
}

// pendingAction is a function that must run after the bytes written
// before it and before those written after it.
type pendingAction struct {
	at int // offset into pending
	fn func()
}

// NewWriter starts the writer goroutine for w; Close ends it.
func NewWriter(w io.Writer, maxPending int) *Writer {
	c := &Writer{w: w, maxPending: maxPending, done: make(chan struct{})}
	c.cond.L = &c.mu
	go c.loop()
	return c
}

// NewDroppingWriter is NewWriter for writes that must never wait for w:
// a write that would take the pending bytes past maxPending, because w
// takes them slower than they come or not at all, is dropped and counted
// (Dropped) instead. The switchyard binary's log lines go through one: a log
// destination nobody reads must not stall the calls that log.
func NewDroppingWriter(w io.Writer, maxPending int) *Writer {
	c := NewWriter(w, maxPending)
	c.drop = true
	return c
}

// Dropped is the number of writes a dropping writer has dropped.
func (c *Writer) Dropped() int64 {
	return c.dropped.Load()
}

// ReportDrops has a dropping writer write report(n), which says that n
// writes were dropped, before the first write it keeps after dropping
// them: whoever reads what w took sees where writes are missing. The
// report is written even past maxPending, and by Close for the writes
// dropped since the last one kept. report runs with the writer locked:
// it must not write to it.
func (c *Writer) ReportDrops(report func(dropped int64) []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.report = report
}

// appendReport queues the report of the writes dropped since the last
// one (ReportDrops), if any; c.mu is held.
func (c *Writer) appendReport() {
	if c.unreported > 0 && c.report != nil {
		c.pending = append(c.pending, c.report(c.unreported)...)
		c.unreported = 0
	}
}

// Write queues a copy of p; it returns the error of an earlier write.
// A dropping writer with no room for p drops it and reports it written.
func (c *Writer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.closed && len(c.pending) > 0 && len(c.pending)+len(p) > c.maxPending {
		if c.drop {
			c.dropped.Add(1)
			c.unreported++
			return len(p), nil
		}
		c.cond.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, ErrClosed
	}
	if len(c.pending) == 0 {
		c.cond.Broadcast()
	}
	c.appendReport()
	c.pending = append(c.pending, p...)
	return len(p), nil
}

// Flush waits until everything written so far has been handed to w.
func (c *Writer) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && (len(c.pending) > 0 || len(c.actions) > 0 || c.writing) {
		c.cond.Wait()
	}
	return c.err
}

// AfterPending runs fn once everything written so far has been handed to
// w, and before anything written later is: in order with the writes, as
// if the writes had been made straight to w. With nothing pending, fn runs
// at once. fn must not block; it runs on whichever goroutine completes the
// preceding write.
//
// A connection routes its write deadlines through it: a deadline set after
// a write governs only later writes, as on an unbuffered socket, whose
// kernel buffer already holds the earlier bytes.
func (c *Writer) AfterPending(fn func()) {
	c.mu.Lock()
	if len(c.pending) == 0 && len(c.actions) == 0 && !c.writing {
		c.mu.Unlock()
		fn()
		return
	}
	c.actions = append(c.actions, pendingAction{at: len(c.pending), fn: fn})
	c.cond.Broadcast()
	c.mu.Unlock()
}

// Close refuses further writes and waits at most timeout for the pending
// ones to reach w. It does not close w.
func (c *Writer) Close(timeout time.Duration) {
	c.mu.Lock()
	if c.err == nil && !c.closed {
		c.appendReport() // the drops since the last write kept: reported last
	}
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	}
}

func (c *Writer) loop() {
	defer close(c.done)
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for len(c.pending) == 0 && len(c.actions) == 0 && !c.closed {
			c.cond.Wait()
		}
		if len(c.pending) == 0 && len(c.actions) == 0 {
			for c.writing {
				c.cond.Wait()
			}
			return
		}
		if len(c.pending) < coalesceBatch && !c.closed {
			// A small batch: let the goroutines that are ready to run
			// (handlers finishing their responses, callers logging) add
			// to it first. With nothing else to run, this returns at once.
			c.mu.Unlock()
			runtime.Gosched()
			c.mu.Lock()
		}
		if len(c.pending) > 0 || len(c.actions) > 0 {
			c.writeLocked()
		}
		if c.err != nil {
			return
		}
	}
}

// writeLocked hands what is pending to w, with c.mu released during the
// write, and runs the actions due after it. Pending bytes that follow an
// action stay pending for the next write. Called with c.mu held and no
// write in progress.
func (c *Writer) writeLocked() {
	n := len(c.pending)
	if len(c.actions) > 0 {
		n = c.actions[0].at
	}
	c.writing = true
	var err error
	if n > 0 {
		if n == len(c.pending) {
			c.pending, c.spare = c.spare[:0], c.pending
		} else {
			c.spare = append(c.spare[:0], c.pending[:n]...)
			c.pending = c.pending[:copy(c.pending, c.pending[n:])]
		}
		for i := range c.actions {
			c.actions[i].at -= n
		}
		c.mu.Unlock()
		_, err = c.w.Write(c.spare)
		c.mu.Lock()
	}
	// Actions at offset 0 are due: everything written before them is out.
	// (Those queued during the write came after its bytes.)
	for err == nil && len(c.actions) > 0 && c.actions[0].at == 0 {
		fn := c.actions[0].fn
		c.actions = c.actions[:copy(c.actions, c.actions[1:])]
		c.mu.Unlock()
		fn()
		c.mu.Lock()
	}
	c.writing = false
	if cap(c.spare) > c.maxPending/4 {
		// A backlog grew it: let it go, so that a writer whose
		// destination once fell behind does not keep two buffers of
		// up to maxPending each for its life (a connection beneath
		// net/http's server, BufferedListener, kept about half a MiB).
		c.spare = nil
	}
	c.cond.Broadcast()
	if err != nil {
		c.err = err
		c.pending = nil
		c.actions = nil
	}
}
