package testserver

import (
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// WaitGoroutines waits until the process runs at most limit goroutines,
// and fails with a dump of them (and why) if it does not within d.
func WaitGoroutines(t testing.TB, limit int, d time.Duration, why string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for runtime.NumGoroutine() > limit {
		if time.Now().After(deadline) {
			var dump strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&dump, 1)
			t.Fatalf("%s: %d goroutines after %v, want at most %d\n%s", why, runtime.NumGoroutine(), d, limit, dump.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
