//go:build !linux

package h2

import "net"

// acceptQueue cannot ask the socket here: the listener is closed as it
// is, resetting what its accept queue holds.
func acceptQueue(net.Listener) (queued func() int, ok bool) { return nil, false }
