package h2

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/net/http2"
)

// EndCalls ends every call still running on the server's connections:
// at the end of a shutdown's grace, before the connections close, so that
// each call can answer (Ended) while its connection still carries the
// answer, instead of being cut off mid-message.
func (s *Server) EndCalls() {
	for _, c := range s.connections(false) {
		c.endCalls()
	}
}

// EndCallsWithin is how long calls ended at the end of a grace
// (conn.endCalls) get to answer before their connection closes.
const EndCallsWithin = time.Second

// endCalls ends the calls still running: each stream's context is
// cancelled, and a handler waiting for request body is let go (its Read
// returns errCallEnded), so that the handler returns and its answer
// (UNAVAILABLE: internal/server tells by Ended) goes out while the
// connection still carries it. A unary call whose request has not all
// come is refused instead (RST_STREAM REFUSED_STREAM, which clients report
// as UNAVAILABLE): nothing of it has run (its handler reads the whole
// request first), and a failed read would answer canceled before any of
// the server's code could say otherwise. A connection going away closes
// itself once its last handler has returned.
func (c *conn) endCalls() {
	var refused []uint32
	c.mu.Lock()
	for id, st := range c.streams {
		if st.reset {
			continue
		}
		if _, unary := c.srv.unary[st.req.URL.Path]; unary && !st.remoteClosed {
			refused = append(refused, id)
			continue
		}
		st.ended = true
		st.ctx.cancel(context.Canceled)
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	for _, id := range refused {
		c.resetStream(id, http2.ErrCodeRefusedStream, errCallRefused)
	}
}

// errCallEnded is what a Read of the request body returns once the
// server has ended the call: it is context.Canceled, as the handler's
// context now is.
var errCallEnded = fmt.Errorf("h2: the server ended the call: %w", context.Canceled)

// errCallRefused ends a unary call whose request had not all come when
// the server ended its calls (endCalls).
var errCallRefused = errors.New("h2: the server ended the call before its request had all come")

// Ended reports whether the call of ctx, served by internal/h2, was ended
// by the server (Server.EndCalls, or its connection's age grace) rather
// than by its client.
func Ended(ctx context.Context) bool {
	sc, ok := ctx.Value(streamCtxKey{}).(*streamCtx)
	if !ok || sc.st == nil {
		return false
	}
	c := sc.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return sc.st.ended
}
