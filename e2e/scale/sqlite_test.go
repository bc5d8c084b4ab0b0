//go:build scale

package scale

import (
	"testing"
	"time"
)

// Two processes on one SQLite data directory: a team written through one
// is read through the other within 1s, its delete too, and each process's
// change feed (data_version and the change log) delivered both.
func TestSQLiteTwoProcesses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := start(t, "process-a", binary, nil, "-data-dir", dir)
	b := start(t, "process-b", binary, nil, "-data-dir", dir)
	for _, r := range []*replica{a, b} {
		r.waitLog(t, "team feed live", 1, 5*time.Second)
	}
	crossProcess(t, a, b, "SQLite City")
	crossProcess(t, b, a, "The Other Way")
}
