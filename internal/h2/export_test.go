package h2

import (
	"context"
	"net"
)

// WindowWakeups is how many times SETTINGS frames woke the handlers
// waiting for send window, over the server's open connections.
func (s *Server) WindowWakeups() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n uint64
	for c := range s.conns {
		n += c.windowWakeups.Load()
	}
	return n
}

// OpenConns is how many connections the server serves itself.
func (s *Server) OpenConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Bounds the defence tests state.
const (
	MaxQueuedControlFrames = maxQueuedControlFrames
	HeaderFrameOverhead    = headerFrameOverhead
)

// InlineValues and InlineBody are what a stream holds of a request's header
// values and body in its own allocation.
const (
	InlineValues = inlineValues
	InlineBody   = inlineBody
)

// ConnReadBuffer and ConnFirstReadBuffer are a connection's read buffers,
// after and before its client's SETTINGS.
const (
	ConnReadBuffer      = connReadBuffer
	ConnFirstReadBuffer = connFirstReadBuffer
)

// ConnKeepBuffer is the most of a written batch's buffer a connection
// keeps.
const ConnKeepBuffer = connKeepBuffer

// WorkerLimit is how many handlers the worker pool counts before it wakes
// no more workers; WorkersRescued is how many times it stopped counting
// handlers that did not return (workerPool).
func (s *Server) WorkerLimit() int {
	s.workers.mu.Lock()
	defer s.workers.mu.Unlock()
	return s.workers.limit
}

func (s *Server) WorkersRescued() uint64 {
	s.workers.mu.Lock()
	defer s.workers.mu.Unlock()
	return s.workers.rescued
}

// TakeOver takes over c, a BufferedListener's connection, as internal/h2
// does when net/http hands it one; ReadsThroughBuffer reports whether c
// still reads through its buffer.
func TakeOver(c net.Conn) { takeOverBuffered(c) }

func ReadsThroughBuffer(c net.Conn) bool { return c.(*bufferedConn).r != nil }

// SetAcceptedHook sets a function run between a stream's acceptance and
// its request's start, or none (nil).
func SetAcceptedHook(f func()) { testHookAccepted = f }

// Listed reports whether the stream of ctx has its deadline in its
// connection's list (LimitDuration), not on a timer of its own.
func Listed(ctx context.Context) bool {
	c, ok := ctx.Value(streamCtxKey{}).(*streamCtx)
	if !ok || c.dl == nil {
		return false
	}
	c.dl.mu.Lock()
	defer c.dl.mu.Unlock()
	return !c.listedAt.IsZero()
}
