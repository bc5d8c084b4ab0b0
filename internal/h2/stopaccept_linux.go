//go:build linux

package h2

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// acceptQueue returns how many connections wait in the accept queue of
// the listening socket beneath ln: the kernel has made them, Accept has
// not returned them yet (TCP_INFO's tcpi_unacked, for a listener). ok is
// false where the socket cannot be asked.
func acceptQueue(ln net.Listener) (queued func() int, ok bool) {
	sc, isConn := ln.(syscall.Conn)
	if !isConn {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	return func() (n int) {
		_ = rc.Control(func(fd uintptr) {
			if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				n = int(info.Unacked)
			}
		})
		return n
	}, true
}
