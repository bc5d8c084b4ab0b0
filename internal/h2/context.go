package h2

import (
	"context"
	"sync"
	"time"
)

// streamCtx is a stream's context, part of the stream's allocation. It is
// cancelled when the stream ends (reset by the client, the connection
// gone, or its handler returned), and may carry a deadline (LimitDuration).
//
// It is not a context.WithCancel: that allocates a cancelCtx per request,
// and every context derived from it (connect's, a deadline's) allocates a
// map entry in it. streamCtx implements AfterFunc instead, which the
// context package uses to link derived contexts, and a unary deadline
// bounds the stream's own context rather than deriving another (~9% of a
// unary call's allocated bytes, and GC cycles are what set the tail
// latency).
type streamCtx struct {
	base context.Context // the connection's, for its values only (Value)

	mu       sync.Mutex
	done     chan struct{} // made on demand
	err      error
	deadline time.Time
	timer    *time.Timer
	afters   []*afterFunc
}

// streamCtxKey finds the streamCtx beneath the contexts derived from it
// with values (connect's call information).
type streamCtxKey struct{}

func (c *streamCtx) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline, !c.deadline.IsZero()
}

func (c *streamCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *streamCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Value looks key up in the connection's context. Not through
// context.WithoutCancel, whose Value allocates on every lookup that
// reaches it (a call makes about ten: 4% of a unary call's allocated
// bytes). The connection's cancellation cannot leak in: the context
// package links a derived context to a cancelable ancestor found by Value
// only when their Done channels agree, and context.Cause falls back to
// Err when that ancestor has no cause.
func (c *streamCtx) Value(key any) any {
	if key == (streamCtxKey{}) {
		return c
	}
	return c.base.Value(key)
}

func (c *streamCtx) String() string { return "h2.streamCtx" }

// afterFunc is a function registered with AfterFunc.
type afterFunc struct {
	c    *streamCtx
	f    func()
	done bool // ran or stopped
}

// AfterFunc runs f on its own goroutine once the context is done, as
// context.AfterFunc does; stop unregisters it.
func (c *streamCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := &afterFunc{c: c, f: f}
	if c.err != nil {
		a.done = true
		go f()
	} else {
		c.afters = append(c.afters, a)
	}
	return a.stop
}

func (a *afterFunc) stop() bool {
	c := a.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if a.done {
		return false
	}
	a.done = true
	for i, b := range c.afters {
		if b == a {
			c.afters = append(c.afters[:i], c.afters[i+1:]...)
			break
		}
	}
	return true
}

// cancel ends the context with err (context.Canceled or
// context.DeadlineExceeded), once.
func (c *streamCtx) cancel(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	for _, a := range c.afters {
		a.done = true
		go a.f()
	}
	c.afters = nil
}

func (c *streamCtx) expire() { c.cancel(context.DeadlineExceeded) }

// LimitDuration gives the request of ctx a deadline d from now, unless it
// has an earlier one, and reports whether ctx belongs to an internal/h2
// stream (otherwise it does nothing: derive a context instead). For a
// server-side unary deadline without a context of its own.
func LimitDuration(ctx context.Context, d time.Duration) bool {
	c, ok := ctx.Value(streamCtxKey{}).(*streamCtx)
	if !ok {
		return false
	}
	deadline := time.Now().Add(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || !c.deadline.IsZero() && !c.deadline.After(deadline) {
		return true
	}
	c.deadline = deadline
	if c.timer != nil {
		c.timer.Reset(d)
	} else {
		c.timer = time.AfterFunc(d, c.expire)
	}
	return true
}
