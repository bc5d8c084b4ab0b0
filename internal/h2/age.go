package h2

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/internal/outcome"
)

// Connection age (Config.MaxConnectionAge): long-lived connections are
// ended now and then so that a client's calls spread again over servers
// added since it connected (a load balancer balances connections, not
// calls).
//
// internal/h2's connections end themselves (conn.startAging): GOAWAY at the
// age, the grace for what runs, then close. The others — HTTP/1.1, and
// every connection of net/http's HTTP/2 server (StdHTTP2), which has no
// per-connection GOAWAY — are followed by an ageTracker, from the
// http.Server's ConnContext hook to its ConnState hook's StateClosed: past
// its age a connection is marked old, and its next response carries
// Connection: close (connclose.go), after which net/http ends it cleanly:
// over HTTP/1.1 it closes the connection after that response, which tells
// the client not to reuse it; over HTTP/2 it sends GOAWAY. At the end of
// the grace the connection is closed in any case.
//
// An old connection is not closed when it falls idle between requests: a
// client (a proxy's keep-alive pool above all) may have sent its next
// request on it already, and a request it cannot tell was not processed —
// a POST — fails (nginx answers 502). An old connection that stays idle is
// left to the idle timeout, the server's or the client's.

// jitter is d give or take 10%, as grpc-go's MaxConnectionAge.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1))
}

// startAging schedules the connection's end at its age.
func (c *conn) startAging() {
	if c.conf.MaxConnectionAge <= 0 {
		return
	}
	age := jitter(c.conf.MaxConnectionAge)
	c.mu.Lock()
	c.ageTimer = time.AfterFunc(age, c.aged)
	c.mu.Unlock()
}

// aged ends a connection that reached its age: the graceful shutdown's two
// GOAWAYs, and after the grace, the calls still running are ended
// (endCalls), and the connection closed once they have answered, or
// EndCallsWithin later.
func (c *conn) aged() {
	c.shutdown(outcome.GoAwayMaxAge)
	if grace := c.conf.MaxConnectionAgeGrace; grace > 0 {
		c.mu.Lock()
		if !c.closed {
			c.ageTimer = time.AfterFunc(grace, func() {
				c.endCalls()
				c.mu.Lock()
				if !c.closed {
					c.ageTimer = time.AfterFunc(EndCallsWithin, c.closeSocket)
				}
				c.mu.Unlock()
			})
		}
		c.mu.Unlock()
	}
}

// ageTracker ends the connections net/http serves itself at their age.
type ageTracker struct {
	age, grace time.Duration

	mu    sync.Mutex
	conns map[net.Conn]*agedConn
}

type agedConn struct {
	old   atomic.Bool // past its age: handlers read it (endsConn)
	timer *time.Timer // under ageTracker.mu
}

// agedConnKey is the context key of a connection's *agedConn, in the
// context of the connection and of its requests.
type agedConnKey struct{}

// agedConnOf is the ageTracker's entry of r's connection, or nil.
func agedConnOf(r *http.Request) *agedConn {
	ac, _ := r.Context().Value(agedConnKey{}).(*agedConn)
	return ac
}

func newAgeTracker(age, grace time.Duration) *ageTracker {
	return &ageTracker{age: age, grace: grace, conns: map[net.Conn]*agedConn{}}
}

// install chains the tracker into hs.ConnContext, where it starts
// following a connection (net/http calls it before ConnState's StateNew),
// and hs.ConnState, where it stops.
func (t *ageTracker) install(hs *http.Server) {
	prevCtx := hs.ConnContext
	hs.ConnContext = func(ctx context.Context, nc net.Conn) context.Context {
		if prevCtx != nil {
			ctx = prevCtx(ctx, nc)
		}
		return t.connContext(ctx, nc)
	}
	OnConnState(hs, t.connState)
}

// OnConnState has hs's ConnState hook call f, then the hook it had (if
// any): each part of the server that follows connections chains itself in.
func OnConnState(hs *http.Server, f func(net.Conn, http.ConnState)) {
	prev := hs.ConnState
	if prev == nil {
		hs.ConnState = f
		return
	}
	hs.ConnState = func(nc net.Conn, state http.ConnState) {
		f(nc, state)
		prev(nc, state)
	}
}

// connContext starts nc's clock, and puts its entry in the connection's
// context, where the handlers' wrapper finds it (endsConn).
func (t *ageTracker) connContext(ctx context.Context, nc net.Conn) context.Context {
	ac := &agedConn{}
	t.mu.Lock()
	t.conns[nc] = ac
	ac.timer = time.AfterFunc(jitter(t.age), func() { t.reached(nc, ac) })
	t.mu.Unlock()
	return context.WithValue(ctx, agedConnKey{}, ac)
}

func (t *ageTracker) connState(nc net.Conn, state http.ConnState) {
	if state == http.StateHijacked || state == http.StateClosed {
		t.forget(nc)
	}
}

// reached: ac's connection is old. Its next response ends it; the grace,
// if any, bounds how long it may take.
func (t *ageTracker) reached(nc net.Conn, ac *agedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns[nc] != ac {
		return
	}
	ac.old.Store(true)
	if t.grace > 0 {
		ac.timer = time.AfterFunc(t.grace, func() { _ = nc.Close() })
	}
}

// forget stops following nc: it is closed or hijacked, or internal/h2
// serves it (serveConn).
func (t *ageTracker) forget(nc net.Conn) {
	t.mu.Lock()
	t.forgetLocked(nc)
	t.mu.Unlock()
}

func (t *ageTracker) forgetLocked(nc net.Conn) {
	if ac := t.conns[nc]; ac != nil {
		ac.timer.Stop()
		delete(t.conns, nc)
	}
}
