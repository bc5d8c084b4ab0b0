package h2

import (
	"context"
	"sync"
	"time"

	"github.com/switchyard/switchyard/internal/outcome"
	"github.com/switchyard/switchyard/internal/waits"
)

// streamCtx is a stream's context, part of the stream's allocation. It is
// cancelled when the stream ends (reset by the client, the connection
// gone, or its handler returned), and may carry a deadline (LimitDuration).
//
// It is not a context.WithCancel: that allocates a cancelCtx per request,
// and every context derived from it (connect's, a deadline's) allocates a
// map entry in it. streamCtx implements AfterFunc instead, which the
// context package uses to link derived contexts (beneath values, through
// Linked), and a unary deadline
// bounds the stream's own context rather than deriving another (~9% of a
// unary call's allocated bytes, and GC cycles are what set the tail
// latency).
type streamCtx struct {
	base context.Context // the connection's, for its values only (Value)
	rec  *outcome.Record // the call's record, if observed (outcome.FromContext)
	st   *stream         // whose context it is: its waits.Waiter

	mu       sync.Mutex
	done     chan struct{} // made on demand
	err      error
	deadline time.Time
	timer    *time.Timer // for a deadline out of the connection's order
	afters   []*afterFunc

	// Linked's and AfterFunc's first use, in the stream's allocation: a
	// handler links one context and derives about one from it.
	linked   linkedCtx // in use once its stream is set
	first    afterFunc // in use once its c is set
	afterBuf [1]*afterFunc

	// The connection's deadlines, and this stream's place in them:
	// guarded by dl.mu.
	dl         *deadlines
	prev, next *streamCtx
	listedAt   time.Time // its deadline while listed; zero when not
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
	if key == outcome.ContextKey && c.rec != nil {
		return c.rec
	}
	if key == waits.ContextKey {
		return c.st
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
	var a *afterFunc
	if c.first.c == nil {
		a = &c.first
		*a = afterFunc{c: c, f: f}
		c.afters = c.afterBuf[:0]
	} else {
		a = &afterFunc{c: c, f: f}
	}
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
// context.DeadlineExceeded), once: it reports whether this call ended it.
func (c *streamCtx) cancel(err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.dl != nil {
		c.dl.remove(c)
	}
	for _, a := range c.afters {
		a.done = true
		go a.f()
	}
	c.afters = nil
	return true
}

// expire ends the context at its deadline, and wakes the stream's handler
// where it waits in the transport: for request body (Read gives up) or for
// send window (the stream is reset). A client past its deadline has given
// up the call; it would otherwise hold the handler for as long as it keeps
// the stream open.
func (c *streamCtx) expire() {
	if !c.cancel(context.DeadlineExceeded) || c.st == nil {
		return
	}
	conn := c.st.c
	conn.mu.Lock()
	c.st.expired = true
	conn.cond.Broadcast()
	conn.mu.Unlock()
}

// Linked returns ctx with an AfterFunc method, so that contexts derived
// from it are linked to its stream without a goroutine each.
// context.WithCancel and its kin link a child to a parent that is the
// context package's own, or that has an AfterFunc method; any other
// parent gets a goroutine per child, waiting for either to end. A
// handler's context is the stream's beneath connect's values, and
// database/sql derives one per query: a goroutine started, parked and
// woken again per call, for nothing but forwarding the cancellation.
//
// It returns ctx itself when ctx is not above a stream's context.
func Linked(ctx context.Context) context.Context {
	c, ok := ctx.Value(streamCtxKey{}).(*streamCtx)
	if !ok || ctx == context.Context(c) {
		return ctx
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.linked.stream == nil {
		c.linked = linkedCtx{Context: ctx, stream: c}
		return &c.linked
	}
	return &linkedCtx{Context: ctx, stream: c}
}

// linkedCtx is a context above a stream's (Linked).
type linkedCtx struct {
	context.Context
	stream *streamCtx
}

// AfterFunc runs f once the context is done. When it is done exactly when
// the stream is (nothing cancelable in between: their Done channels are
// one), f waits on the stream; otherwise context.AfterFunc finds the
// nearer cancellation. The context package asks for Done before it calls
// AfterFunc, so the comparison allocates nothing new.
func (l *linkedCtx) AfterFunc(f func()) (stop func() bool) {
	if l.Context.Done() == l.stream.Done() {
		return l.stream.AfterFunc(f)
	}
	return context.AfterFunc(l.Context, f)
}

// LimitDuration gives the request of ctx a deadline d from now, unless it
// has an earlier one, and reports whether ctx belongs to an internal/h2
// stream (otherwise it does nothing: derive a context instead). For a
// server-side unary deadline without a context of its own.
func LimitDuration(ctx context.Context, d time.Duration) bool {
	return limitDuration(ctx, d, true)
}

// LimitStreamDuration is LimitDuration for a deadline a stream's client
// chose, of any length: it takes a timer of its own, not a place in the
// connection's list, which would then no longer be in order for the
// unary limit's deadlines that follow (each would take a timer of its
// own while the stream lasts).
func LimitStreamDuration(ctx context.Context, d time.Duration) bool {
	return limitDuration(ctx, d, false)
}

func limitDuration(ctx context.Context, d time.Duration, listed bool) bool {
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
	if listed && c.dl != nil && c.dl.add(c, deadline) {
		return true
	}
	if c.timer != nil {
		c.timer.Reset(d)
	} else {
		c.timer = time.AfterFunc(d, c.expire)
	}
	return true
}

// deadlines is a connection's stream deadlines in the order they fall,
// behind one timer. The server gives every unary call the same limit, so
// each new deadline falls after those before it and joins the end of the
// list; removing a stream that ends first is as cheap. A timer per call
// (time.AfterFunc, started and stopped) was 3% of a unary call's
// allocated bytes and a timer-heap insertion and deletion each. A
// deadline that would fall before the last one listed gets a timer of its
// own instead.
//
// Lock order: a streamCtx's mu before dl.mu.
type deadlines struct {
	mu         sync.Mutex
	head, tail *streamCtx
	timer      *time.Timer
	armedFor   time.Time // when the timer fires; zero when it is not set
	stopped    bool      // the connection is over
}

// add lists c with deadline t (moving it if it was listed with a later
// one), unless t falls before the last one listed.
func (d *deadlines) add(c *streamCtx, t time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.unlinkLocked(c)
	if d.stopped || d.tail != nil && t.Before(d.tail.listedAt) {
		return false
	}
	c.listedAt = t // never zero: a deadline is now plus a duration
	c.prev, c.next = d.tail, nil
	if d.tail != nil {
		d.tail.next = c
	} else {
		d.head = c
	}
	d.tail = c
	if d.armedFor.IsZero() || t.Before(d.armedFor) {
		d.armLocked(t)
	}
	return true
}

func (d *deadlines) remove(c *streamCtx) {
	d.mu.Lock()
	d.unlinkLocked(c)
	d.mu.Unlock()
}

func (d *deadlines) unlinkLocked(c *streamCtx) {
	if c.listedAt.IsZero() {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		d.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		d.tail = c.prev
	}
	c.prev, c.next, c.listedAt = nil, nil, time.Time{}
}

// armLocked sets the timer for t. A stream removed before its deadline
// leaves the timer set for it: fire then finds nothing due and sets it
// for the next.
func (d *deadlines) armLocked(t time.Time) {
	d.armedFor = t
	if d.timer == nil {
		d.timer = time.AfterFunc(time.Until(t), d.fire)
	} else {
		d.timer.Reset(time.Until(t))
	}
}

// fire expires the streams whose deadlines have passed, in order.
func (d *deadlines) fire() {
	for {
		d.mu.Lock()
		c := d.head
		if c == nil || c.listedAt.After(time.Now()) {
			d.armedFor = time.Time{}
			if c != nil && !d.stopped {
				d.armLocked(c.listedAt)
			}
			d.mu.Unlock()
			return
		}
		d.unlinkLocked(c)
		d.mu.Unlock()
		c.expire()
	}
}

// stop ends the timer with the connection.
func (d *deadlines) stop() {
	d.mu.Lock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
	}
	d.mu.Unlock()
}
