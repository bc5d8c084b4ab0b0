package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/switchyard/switchyard/bench/internal/proc"
)

// layout is where one core count runs: the servers on the first cores,
// the load generator (and its writer) on the others.
type layout struct {
	cores  int   // server cores (and the servers' GOMAXPROCS, and connections)
	server []int // CPU numbers
	client []int // CPU numbers; empty means unpinned
}

// plan assigns CPUs for each requested server core count, in order, and
// says why a count was skipped: the load generator needs at least half
// as many cores as the servers (it costs a fraction of a server's CPU per
// call) and always at least one of its own. On a machine of one CPU the
// one-core count still runs, servers and load generator sharing it, so
// the tools work anywhere; its numbers then say little (run prints so).
func plan(cpus []int, counts []int) (fit []layout, skipped []string) {
	for _, n := range counts {
		if n == 1 && len(cpus) == 1 {
			fit = append(fit, layout{cores: 1, server: cpus, client: cpus})
			continue
		}
		need := n + (n+1)/2
		if n < 1 || len(cpus) < need {
			skipped = append(skipped, fmt.Sprintf("%d server core(s): skipped, this machine gives %d CPUs and %d server cores need %d (at least %d for the load generator)",
				n, len(cpus), n, need, (n+1)/2))
			continue
		}
		fit = append(fit, layout{cores: n, server: cpus[:n], client: cpus[n:]})
	}
	return fit, skipped
}

// firstLayout is where the first of counts that fits cpus would run, as
// benchrun -layout prints it: "N SERVER_CPUS LOAD_CPUS".
func firstLayout(cpus []int, counts []int) (string, error) {
	fit, skipped := plan(cpus, counts)
	if len(fit) == 0 {
		return "", fmt.Errorf("no requested core count fits this machine: %s", strings.Join(skipped, "; "))
	}
	l := fit[0]
	return fmt.Sprintf("%d %s %s", l.cores, cpuList(l.server), cpuList(l.client)), nil
}

// allowedCPUs lists the CPUs this process may run on, in order.
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		out := make([]int, runtime.NumCPU())
		for i := range out {
			out[i] = i
		}
		return out
	}
	var out []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-cores %q: want a comma-separated list of server core counts such as 1,2,4,8", s)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// sharedSiblings names the server CPUs whose hyperthread siblings carry
// the load generator, which then competes for the same execution units.
func sharedSiblings(l layout) []string {
	var out []string
	for _, c := range l.server {
		b, err := os.ReadFile(fmt.Sprintf("/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", c))
		if err != nil {
			continue
		}
		for _, sib := range expandList(strings.TrimSpace(string(b))) {
			if sib != c && slices.Contains(l.client, sib) {
				out = append(out, fmt.Sprintf("%d~%d", c, sib))
			}
		}
	}
	return out
}

// expandList reads a kernel CPU list such as "0-3,8".
func expandList(s string) []int {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		lo, hi, ok := strings.Cut(f, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if ok {
			if b, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out
}

// cpuSet is the affinity mask of cpus.
func cpuSet(cpus []int) unix.CPUSet {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	return set
}

// pinFlag is the argument by which benchrun re-executes itself to pin a
// program: "benchrun -pin 0,1 -- PROGRAM ARGS..." sets its own CPU
// affinity and then becomes PROGRAM, which inherits it. This is taskset's
// job, done here so that the benchmark needs nothing installed.
const pinFlag = "-pin"

// execPinned is benchrun's -pin mode; it returns only on failure.
func execPinned(args []string) error {
	if len(args) < 3 || args[1] != "--" {
		return fmt.Errorf("usage: benchrun %s CPULIST -- PROGRAM [ARGS...]", pinFlag)
	}
	set := cpuSet(expandList(args[0]))
	if set.Count() == 0 {
		return fmt.Errorf("%s %q: no CPU", pinFlag, args[0])
	}
	// The affinity is a thread's; exec keeps the calling thread's, so the
	// call and the exec happen on one locked thread.
	runtime.LockOSThread()
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to CPUs %s: %w", args[0], err)
	}
	return syscall.Exec(args[2], args[2:], os.Environ())
}

// pinTree sets the CPU affinity of process pid and of its children, which
// keep it, as the children it forks later inherit it (PostgreSQL's
// postmaster forks a process per session). The processes are taken to
// be single-threaded, as PostgreSQL's are.
func pinTree(pid int, cpus []int) error {
	set := cpuSet(cpus)
	for _, p := range append([]int{pid}, childrenOf(pid)...) {
		if err := unix.SchedSetaffinity(p, &set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("pin process %d to CPUs %s: %w", p, cpuList(cpus), err)
		}
	}
	return nil
}

// pinSelf pins every thread of this process to cpus, and threads made
// later inherit it from the thread that makes them: benchrun's own work
// (reading the Switchyard servers' log lines, sampling RSS, watching the
// other servers) then stays off the servers' CPUs. It runs over the
// threads until a pass finds every one pinned, as one may start meanwhile.
func pinSelf(cpus []int) error {
	set := cpuSet(cpus)
	for pass := 0; pass < 10; pass++ {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		changed := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			var cur unix.CPUSet
			if err := unix.SchedGetaffinity(tid, &cur); err == nil && cur == set {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin thread %d to CPUs %s: %w", tid, cpuList(cpus), err)
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return fmt.Errorf("pin benchrun to CPUs %s: its threads kept changing", cpuList(cpus))
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if child, err := strconv.Atoi(e.Name()); err == nil && proc.Parent(child) == pid {
			out = append(out, child)
		}
	}
	return out
}
