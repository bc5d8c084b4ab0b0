//go:build unix

package h2_test

import (
	"net"
	"syscall"
)

// dialSmallReadBuffer connects to addr with a receive buffer of n bytes,
// set before the SYN: the window the socket advertises (and its scale)
// then matches what it can hold. Shrunk after the connection is made, the
// buffer would be smaller than the window already promised, and the
// kernel would drop the segments that overrun it, with the ACKs they
// carry: the connection would stall both ways in retransmission backoff
// (RTO seconds long) and a test could not tell that from a server that
// stopped reading.
func dialSmallReadBuffer(addr string, n int) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	return d.Dial("tcp", addr)
}
