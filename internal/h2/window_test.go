package h2

import (
	"math"
	"testing"
)

// A change of SETTINGS_INITIAL_WINDOW_SIZE visits no stream
// (GO-2026-6611): the 1000 open streams here are nil, which any walk of
// them would dereference. A stream's window follows the setting by
// construction, and one taken past 2^31-1 is found when it is next used.
func TestSetPeerWindowVisitsNoStream(t *testing.T) {
	c := &conn{streams: map[uint32]*stream{}, sendWindow: initialWindow, peerWindow: initialWindow, waitingDelta: math.MinInt32}
	c.cond.L = &c.mu
	for i := range 1000 {
		c.streams[uint32(2*i+1)] = nil
	}
	spent := &stream{c: c, sendDelta: -100}      // sent 100 bytes more than it was granted
	granted := &stream{c: c, sendDelta: 1 << 20} // granted 1 MiB more than it sent
	for _, v := range []uint32{0, 70000, 1<<31 - 1, 65535, 1<<31 - 1<<20} {
		c.setPeerWindow(v)
		for _, st := range []*stream{spent, granted} {
			want := int64(v) + int64(st.sendDelta)
			c.mu.Lock()
			w, ok := st.sendWindowLocked()
			c.mu.Unlock()
			if ok != (want <= maxWindow) || ok && int64(w) != want {
				t.Errorf("initial window %d, delta %d: window %d (ok %v), want %d", v, st.sendDelta, w, ok, want)
			}
		}
	}
	if n := c.windowWakeups.Load(); n != 0 {
		t.Errorf("with no handler waiting, the changes woke handlers %d times", n)
	}
}
