//go:build linux

package h2

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpNotSentLowat is TCP_NOTSENT_LOWAT (linux/tcp.h), missing from syscall.
const tcpNotSentLowat = 25

// limitUnsent makes the socket beneath nc take no more writes while n
// bytes of it are unsent: held back by a peer that does not read (its
// window closed), not in flight. The connection's writer then waits, and
// knows, instead of the kernel buffering megabytes (autotuned send
// buffers) for a peer that may never read them; bytes in flight, which
// fast links need, are not limited.
func limitUnsent(nc net.Conn, n int) {
	tc := tcpConnOf(nc)
	if tc == nil {
		return
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, n)
	})
}

// bytesAcked is how many bytes the peer of the TCP connection beneath nc
// has acknowledged (TCP_INFO's tcpi_bytes_acked, Linux 4.1 and later): it
// grows while the peer reads, however slowly, and stops when the peer
// does. ok is false where it cannot be read.
func bytesAcked(nc net.Conn) (acked uint64, ok bool) {
	tc := tcpConnOf(nc)
	if tc == nil {
		return 0, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	_ = rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			acked, ok = info.Bytes_acked, true
		}
	})
	return acked, ok
}
