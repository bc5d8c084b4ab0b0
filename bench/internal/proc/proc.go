// Package proc reads what the benchmark tools measure of a server process
// from Linux's /proc: its CPU time and its memory.
package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, 100 on every Linux the benchmarks run on.
const clockTicks = 100

// stat is pid's /proc/PID/stat fields after the command name (which may
// hold spaces), from its state on; nil if they cannot be read.
func stat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return nil
	}
	return f
}

// CPUTime is the user+system time pid has used, 0 if it cannot be read.
func CPUTime(pid int) time.Duration {
	f := stat(pid)
	if f == nil {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / clockTicks
}

// Parent is pid's parent's process id, 0 if it cannot be read.
func Parent(pid int) int {
	f := stat(pid)
	if f == nil {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// Mem is a process's resident memory, in MiB: now, the part of it that
// is anonymous (heap, stacks, the runtime's own: not pages of files such
// as the executable's), and at its peak.
type Mem struct{ RSS, Anon, Peak float64 }

// Memory reads pid's VmRSS, RssAnon and VmHWM; zeros if they cannot be
// read.
func Memory(pid int) Mem {
	var m Mem
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m
	}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmRSS":
			m.RSS = kb / 1024
		case "RssAnon":
			m.Anon = kb / 1024
		case "VmHWM":
			m.Peak = kb / 1024
		}
	}
	return m
}
