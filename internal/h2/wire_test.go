package h2

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// recordingConn is a socket that keeps what is written to it.
type recordingConn struct {
	net.Conn
	writes [][]byte
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

// A handler that ends a response writes the batch itself once
// writeThrough responses have ended since the last socket write,
// writeThroughBytes are pending, or the first of them ended
// writeThroughWait ago (looked at every writeThroughLook-th end),
// whichever comes first; otherwise it leaves the batch to the writer
// goroutine.
func TestResponseEndWritesThrough(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pending int           // bytes pending when the response ends
		ended   int           // responses ended before it since the last write
		waited  time.Duration // since the first of them ended
		writes  bool
	}{
		{"a short batch", 1 << 10, 0, 0, false},
		{"a short batch, one response short of writeThrough", 1 << 10, writeThrough - 2, 0, false},
		{"the writeThrough-th response", 1 << 10, writeThrough - 1, 0, true},
		{"just under writeThroughBytes", writeThroughBytes - 1, 0, 0, false},
		{"writeThroughBytes pending", writeThroughBytes, 0, 0, true},
		{"a look before writeThroughWait", 1 << 10, writeThroughLook - 1, writeThroughWait / 2, false},
		{"a look after writeThroughWait", 1 << 10, writeThroughLook - 1, writeThroughWait, true},
		{"after writeThroughWait, between looks", 1 << 10, writeThroughLook, writeThroughWait, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc := &recordingConn{}
			c := &conn{nc: nc}
			c.room.L = &c.wmu
			c.out = bytes.Repeat([]byte{'x'}, tc.pending)
			c.ended = tc.ended
			c.firstEnded = time.Now().Add(-tc.waited)
			c.wmu.Lock()
			c.responseEndedLocked()
			c.wmu.Unlock()
			switch {
			case !tc.writes && len(nc.writes) != 0:
				t.Errorf("wrote %d times; want the batch left to the writer", len(nc.writes))
			case tc.writes && (len(nc.writes) != 1 || len(nc.writes[0]) != tc.pending || len(c.out) != 0 || c.ended != 0):
				t.Errorf("writes %d, pending %d, ended %d; want the %d pending bytes written at once", len(nc.writes), len(c.out), c.ended, tc.pending)
			}
		})
	}
}
