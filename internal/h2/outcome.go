package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/net/http2"

	"github.com/switchyard/switchyard/internal/outcome"
)

// The call-outcome hooks: every stream keeps an outcome.Record (in its own
// allocation) that the transport fills as the call goes, from what crosses
// the wire, and hands to Config.Observer when the call starts and ends.
// The calls live here; stream.go, writer.go and conn.go only call in.

// errPeerClosed ends the streams of a connection that its client closed
// (conn.peerEnded); errConnClosed those of one the server closed. The
// record tells the two apart: the client's close is its cancel.
var errPeerClosed = errors.New("h2: connection closed by the client")

// errSendWindowStalled ends a stream whose client opened no send window for
// Config.SendWindowTimeout.
var errSendWindowStalled = errors.New("h2: the client opened no flow-control window for the response")

// errDeadlineStalled ends a stream whose deadline passed while it waited
// for send window.
var errDeadlineStalled = fmt.Errorf("h2: the call's deadline passed while the client opened no flow-control window: %w", context.DeadlineExceeded)

// errBodyDeadline is what a Read of the request body returns once the
// call's deadline has passed with no data to give: connect-go, like the
// handlers, tells it by context.DeadlineExceeded.
var errBodyDeadline = fmt.Errorf("h2: the call's deadline passed while the handler waited for the request body: %w", context.DeadlineExceeded)

// beginRecord starts the record of a stream about to run its handler.
func (c *conn) beginRecord(st *stream, req *http.Request) {
	obs := c.conf.Observer
	if obs == nil {
		return
	}
	st.observed = true
	st.rec.Begin(req, time.Now())
	st.ctx.rec = &st.rec
	obs.CallStarted(&st.rec)
}

// endRecord completes the record once the handler has returned, before the
// response's header map goes back to its pool. wasReset and why are the
// stream's state before closeStream ended it; rst is set when closeStream
// itself reset the stream (a response the handler did not end).
func (w *responseWriter) endRecord(wasReset bool, why error, rst bool) {
	st := w.st
	if !st.observed {
		return
	}
	c := st.c
	// The request side of the record was the serve goroutine's, under
	// c.mu, until closeStream took the stream out of c.streams under c.mu:
	// it is this goroutine's alone now.
	rec := &st.rec
	end, code := outcome.EndSent, outcome.CodeInternal
	switch {
	case w.sent:
	case wasReset && why == errClientReset:
		end = outcome.EndClientReset
	case wasReset && why == errPeerClosed:
		end, code = outcome.EndConnClosed, outcome.CodeCanceled
	case wasReset && why == errConnClosed:
		end, code = outcome.EndConnClosed, outcome.CodeUnavailable
	case wasReset && why == errSendWindowStalled:
		end, code = outcome.EndServerReset, outcome.CodeFromReset(uint32(http2.ErrCodeCancel))
		rec.Message = fmt.Sprintf("reset: the client opened no flow-control window for %v", c.conf.SendWindowTimeout)
	case wasReset && why == errCallRefused:
		end, code = outcome.EndServerReset, outcome.CodeFromReset(uint32(http2.ErrCodeRefusedStream))
		rec.Message = "reset REFUSED_STREAM: the server ended the call before its request had all come: retry it"
	case wasReset && why == errDeadlineStalled:
		end, code = outcome.EndServerReset, outcome.CodeDeadlineExceeded
		rec.Message = "reset: the call's deadline passed while the client opened no flow-control window"
	case wasReset || rst:
		end = outcome.EndServerReset
	default: // the response did not reach the socket
		end, code = outcome.EndConnClosed, outcome.CodeUnavailable
	}
	status := w.status
	switch {
	case end != outcome.EndSent && !w.sentHeader:
		status = 0 // no response reached the client: no status
	case status == 0:
		status = http.StatusOK
	}
	rec.Finish(time.Now(), status, w.header, end, code)
	c.conf.Observer.CallEnded(rec)
	rec.Header = nil
	rec.Span = nil
}

// explainRejection gives a bare rejection (connect's empty 415 or 405) a
// body a person can read, before the response is sent
// (outcome.RejectionBody).
func (w *responseWriter) explainRejection() {
	if !outcome.Explained(w.status) || w.sentHeader || w.written > 0 || w.err != nil {
		return
	}
	h := w.fields()
	fields := make(http.Header, len(h.fields))
	for _, f := range h.fields {
		fields[f.key] = f.values
	}
	if body, ok := outcome.RejectionBody(&w.st.req, w.status, fields); ok {
		h.fields = h.fields[:0]
		for k, vv := range fields {
			h.set(k, vv)
		}
		w.declared = -1
		w.st.rec.Explain(body) // before its bytes reach the record
		_, _ = io.WriteString(w, body)
	}
}

// OutcomeRecord implements outcome.Recorder: outcome.Observe leaves the
// streams of internal/h2 to their own records.
func (w *responseWriter) OutcomeRecord() *outcome.Record { return &w.st.rec }

// waitSendWindow waits until the stream may send again (or is over). A
// client that opens no window for Config.SendWindowTimeout, or until the
// call's deadline, would hold the handler (and what it has buffered) for
// as long as it keeps the connection, answering pings: the stream is reset
// with CANCEL instead.
func (c *conn) waitSendWindow(st *stream) {
	var timer *time.Timer
	var stalled bool
	var why error // the reset's
	c.mu.Lock()
	for !st.reset && !c.closed {
		if w, ok := st.sendWindowLocked(); !ok || w > 0 && c.sendWindow > 0 {
			break // send takes the window, or finds it past 2^31-1
		}
		if st.expired {
			why = errDeadlineStalled
			break
		}
		if stalled {
			why = errSendWindowStalled
			break
		}
		if st.releaseUnlocked(&c.mu) {
			continue // waiting for the client: the handler counts no more
		}
		if timer == nil && c.conf.SendWindowTimeout > 0 {
			timer = time.AfterFunc(c.conf.SendWindowTimeout, func() {
				c.mu.Lock()
				stalled = true
				c.cond.Broadcast()
				c.mu.Unlock()
			})
		}
		c.waitingDelta = max(c.waitingDelta, st.sendDelta) // setPeerWindow
		c.cond.Wait()
	}
	c.mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
	if why != nil {
		c.resetStream(st.id, http2.ErrCodeCancel, why)
	}
}

// Transport events, for the Observer's counters.

func (c *conn) noteClientReset(code http2.ErrCode) {
	if obs := c.conf.Observer; obs != nil {
		obs.StreamReset(true, uint32(code))
	}
}

func (c *conn) noteServerReset(code http2.ErrCode) {
	obs := c.conf.Observer
	switch {
	case obs == nil:
	case code == http2.ErrCodeRefusedStream:
		obs.StreamRefused()
	default:
		obs.StreamReset(false, uint32(code))
	}
}

func (c *conn) noteGoAway(code http2.ErrCode, reason outcome.GoAwayReason) {
	if obs := c.conf.Observer; obs != nil {
		obs.GoAway(uint32(code), reason)
	}
}

func (c *conn) noteTimeout(ping bool) {
	obs := c.conf.Observer
	switch {
	case obs == nil:
	case ping:
		obs.PingTimeout()
	default:
		obs.WriteTimeout()
	}
}
