package proc_test

import (
	"os"
	"testing"
	"time"

	"github.com/switchyard/switchyard/bench/internal/proc"
)

// This process's own figures: CPU time grows with work, its memory is
// resident, partly anonymous and no larger than its peak, and its parent is its parent.
func TestOwnProcess(t *testing.T) {
	pid := os.Getpid()
	before := proc.CPUTime(pid)
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	if after := proc.CPUTime(pid); after <= before {
		t.Errorf("CPU time %v after 50 ms of work, %v before", after, before)
	}
	if m := proc.Memory(pid); m.RSS <= 0 || m.Peak < m.RSS || m.Anon <= 0 || m.Anon > m.RSS {
		t.Errorf("RSS %.1f MiB, of it anonymous %.1f, peak %.1f", m.RSS, m.Anon, m.Peak)
	}
	if m := proc.Memory(-1); m != (proc.Mem{}) {
		t.Errorf("memory of no process = %+v, want zeros", m)
	}
	if cpu := proc.CPUTime(-1); cpu != 0 {
		t.Errorf("CPU time of no process = %v, want 0", cpu)
	}
	if p := proc.Parent(pid); p != os.Getppid() {
		t.Errorf("Parent = %d, want %d", p, os.Getppid())
	}
	if p := proc.Parent(-1); p != 0 {
		t.Errorf("Parent of no process = %d, want 0", p)
	}
}
