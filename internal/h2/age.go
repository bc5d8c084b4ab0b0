package h2

import (
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
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
// per-connection GOAWAY — are followed through the http.Server's ConnState
// hook by an ageTracker: past its age a connection is closed as soon as it
// is idle between requests, and at the end of the grace in any case.

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
// GOAWAYs, and after the grace, a close that cancels what still runs.
func (c *conn) aged() {
	c.shutdown(outcome.GoAwayMaxAge)
	if grace := c.conf.MaxConnectionAgeGrace; grace > 0 {
		c.mu.Lock()
		if !c.closed {
			c.ageTimer = time.AfterFunc(grace, c.closeSocket)
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
	idle  bool // between requests
	old   bool // past its age
	timer *time.Timer
}

func newAgeTracker(age, grace time.Duration) *ageTracker {
	return &ageTracker{age: age, grace: grace, conns: map[net.Conn]*agedConn{}}
}

// install chains the tracker into hs.ConnState.
func (t *ageTracker) install(hs *http.Server) {
	prev := hs.ConnState
	hs.ConnState = func(nc net.Conn, state http.ConnState) {
		t.connState(nc, state)
		if prev != nil {
			prev(nc, state)
		}
	}
}

func (t *ageTracker) connState(nc net.Conn, state http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ac := t.conns[nc]
	switch state {
	case http.StateNew:
		ac = &agedConn{}
		t.conns[nc] = ac
		ac.timer = time.AfterFunc(jitter(t.age), func() { t.reached(nc, ac) })
	case http.StateActive, http.StateIdle:
		if ac == nil {
			return
		}
		ac.idle = state == http.StateIdle
		if ac.idle && ac.old {
			_ = nc.Close()
		}
	case http.StateHijacked, http.StateClosed:
		t.forgetLocked(nc)
	}
}

// reached: ac's connection is old; it goes when idle, or after the grace.
func (t *ageTracker) reached(nc net.Conn, ac *agedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns[nc] != ac {
		return
	}
	ac.old = true
	if ac.idle {
		_ = nc.Close()
		return
	}
	if t.grace > 0 {
		ac.timer = time.AfterFunc(t.grace, func() { _ = nc.Close() })
	}
}

// forget stops following nc: internal/h2 serves it.
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
