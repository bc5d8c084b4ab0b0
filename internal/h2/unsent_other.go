//go:build !linux

package h2

import "net"

// limitUnsent is Linux's TCP_NOTSENT_LOWAT (unsent_linux.go); elsewhere
// the kernel's own send buffer bounds what waits for the peer.
func limitUnsent(net.Conn, int) {}

// bytesAcked is Linux's count of the bytes the peer acknowledged
// (unsent_linux.go); elsewhere the watchdog sees progress only as socket
// writes that return.
func bytesAcked(net.Conn) (uint64, bool) { return 0, false }
