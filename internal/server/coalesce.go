package server

import (
	"errors"
	"io"
	"runtime"
	"sync"
	"time"
)

// coalesceBatch is the batch size below which the writer goroutine yields
// once before writing.
const coalesceBatch = 32 << 10

// ErrWriterClosed is returned by writes to a closed CoalescingWriter.
var ErrWriterClosed = errors.New("write after close")

// CoalescingWriter hands writes to one writer goroutine: Write copies and
// returns at once, and whatever is written while the goroutine is inside a
// write of the underlying writer goes out in its next one. Many small
// writes (HTTP/2 frames, log lines) then cost one system call per batch
// rather than one each, with no timer: an idle writer writes at once.
// Nothing is dropped; past maxPending bytes, Write waits.
type CoalescingWriter struct {
	w          io.Writer
	maxPending int

	mu      sync.Mutex
	cond    sync.Cond // signalled when pending grows or drains, or on close
	pending []byte    // written, not yet handed to w
	spare   []byte    // the goroutine's buffer, swapped with pending
	writing bool      // the goroutine is inside w.Write
	err     error     // the first error of w; later writes return it
	closed  bool
	done    chan struct{} // closed when the goroutine ends

	// Responses whose ends were written since the last batch went out
	// (ResponseEnded), and how many make a Write go out at once.
	ended, writeThrough int

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

// NewCoalescingWriter starts the writer goroutine for w; Close ends it.
func NewCoalescingWriter(w io.Writer, maxPending int) *CoalescingWriter {
	c := &CoalescingWriter{w: w, maxPending: maxPending, done: make(chan struct{})}
	c.cond.L = &c.mu
	go c.loop()
	return c
}

// Write queues a copy of p; it returns the error of an earlier write.
func (c *CoalescingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.closed && len(c.pending) > 0 && len(c.pending)+len(p) > c.maxPending {
		c.cond.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, ErrWriterClosed
	}
	if len(c.pending) == 0 {
		c.cond.Broadcast()
	}
	c.pending = append(c.pending, p...)
	return len(p), nil
}

// Flush waits until everything written so far has been handed to w.
func (c *CoalescingWriter) Flush() error {
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
func (c *CoalescingWriter) AfterPending(fn func()) {
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
func (c *CoalescingWriter) Close(timeout time.Duration) {
	c.mu.Lock()
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

func (c *CoalescingWriter) loop() {
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
			// (handlers finishing their responses) add to it first. With
			// nothing else to run, this returns at once.
			c.mu.Unlock()
			runtime.Gosched()
			c.mu.Lock()
		}
		for c.writing { // a ResponseEnded caller took the batch
			c.cond.Wait()
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
func (c *CoalescingWriter) writeLocked() {
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
		c.ended = 0
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
	if cap(c.spare) > 4*c.maxPending {
		c.spare = nil // a burst grew it; let it go
	}
	c.cond.Broadcast()
	if err != nil {
		c.err = err
		c.pending = nil
		c.actions = nil
	}
}

// ResponseEnded tells the writer that what was written so far ends a
// response (an HTTP/2 stream). With WriteThrough(n), the caller that ends
// the n-th response since the last batch writes the batch itself, when no
// write is in progress: the writer goroutine yields before a small batch
// and, with a core full of handlers, may not run again until they are all
// done, holding finished responses back for a whole round of them.
func (c *CoalescingWriter) ResponseEnded() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended++
	if c.writeThrough > 0 && c.ended >= c.writeThrough && !c.writing && len(c.pending) > 0 && c.err == nil {
		c.writeLocked()
	}
}

// WriteThrough sets how many ended responses make ResponseEnded write the
// pending batch itself (0, the default: never).
func (c *CoalescingWriter) WriteThrough(responses int) {
	c.mu.Lock()
	c.writeThrough = responses
	c.mu.Unlock()
}
