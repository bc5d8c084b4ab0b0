//go:build !unix

package h2_test

import "net"

// dialSmallReadBuffer connects to addr and shrinks its receive buffer to
// n bytes (see rcvbuf_unix_test.go for why unix sets it before the SYN).
func dialSmallReadBuffer(addr string, n int) (net.Conn, error) {
	nc, err := net.Dial("tcp", addr)
	if err == nil {
		_ = nc.(*net.TCPConn).SetReadBuffer(n)
	}
	return nc, err
}
