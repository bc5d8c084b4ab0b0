//go:build !linux

package h2

import "net"

// limitUnsent is Linux's TCP_NOTSENT_LOWAT (unsent_linux.go); elsewhere
// the kernel's own send buffer bounds what waits for the peer.
func limitUnsent(net.Conn, int) {}
