package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/pgtest"
	"golang.org/x/sys/unix"
)

// The test binary is benchrun's own pinning wrapper too, as benchrun is.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == pinFlag {
		err := execPinned(os.Args[2:])
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
	code := m.Run()
	if bundleDir != "" {
		_ = os.RemoveAll(bundleDir)
	}
	os.Exit(code)
}

var (
	bundleOnce sync.Once
	bundleDir  string
	bundleErr  error
)

// buildBundle makes the bundle `make bench-bundle` packs (bundle.sh), once
// for the tests that run its scripts; TestMain removes it.
func buildBundle(t *testing.T) string {
	t.Helper()
	bundleOnce.Do(func() {
		if bundleDir, bundleErr = os.MkdirTemp("", "switchyard-bundle-"); bundleErr != nil {
			return
		}
		out, err := exec.Command("bash", "../../bundle.sh", bundleDir).CombinedOutput()
		if err != nil {
			bundleErr = fmt.Errorf("bundle.sh: %v\n%s", err, out)
		}
	})
	if bundleErr != nil {
		t.Fatal(bundleErr)
	}
	return bundleDir
}

// -layout names the first count that fits, with plan's CPUs, and fails
// naming why when none does.
func TestFirstLayout(t *testing.T) {
	sixteen := make([]int, 16)
	for i := range sixteen {
		sixteen[i] = i
	}
	for _, c := range []struct {
		cpus, counts []int
		want         string
	}{
		{sixteen, []int{8, 4, 2, 1}, "8 0,1,2,3,4,5,6,7 8,9,10,11,12,13,14,15"},
		{sixteen, []int{16, 4}, "4 0,1,2,3 4,5,6,7,8,9,10,11,12,13,14,15"},
		{[]int{2, 5}, []int{8, 4, 2, 1}, "1 2 5"},
	} {
		if got, err := firstLayout(c.cpus, c.counts); err != nil || got != c.want {
			t.Errorf("firstLayout(%v, %v) = %q, %v, want %q", c.cpus, c.counts, got, err, c.want)
		}
	}
	if got, err := firstLayout([]int{0, 1}, []int{8, 2}); err == nil || !strings.Contains(err.Error(), "8 server core(s): skipped") {
		t.Errorf("no count fits: %q, %v", got, err)
	}
}

// Core counts that leave the load generator fewer than half as many
// cores (and at least one) are skipped with the reason; the others get
// the first CPUs for the servers and the rest for the load generator.
func TestPlan(t *testing.T) {
	two := []int{0, 1}
	fit, skipped := plan(two, []int{1, 2, 4, 8})
	if len(fit) != 1 || fit[0].cores != 1 || !reflect.DeepEqual(fit[0].server, []int{0}) || !reflect.DeepEqual(fit[0].client, []int{1}) {
		t.Errorf("2 CPUs: %+v", fit)
	}
	if len(skipped) != 3 || !strings.Contains(skipped[0], "2 server core(s): skipped, this machine gives 2 CPUs") {
		t.Errorf("2 CPUs skipped: %q", skipped)
	}
	fit, skipped = plan([]int{3}, []int{1, 2})
	if len(fit) != 1 || !reflect.DeepEqual(fit[0].server, []int{3}) || !reflect.DeepEqual(fit[0].client, []int{3}) || len(skipped) != 1 {
		t.Errorf("1 CPU: fit %+v, skipped %q", fit, skipped)
	}
	var sixteen []int
	for c := range 16 {
		sixteen = append(sixteen, c+16) // not numbered from 0: an affinity mask may start anywhere
	}
	fit, skipped = plan(sixteen, []int{1, 2, 4, 8, 12})
	var got []int
	for _, l := range fit {
		got = append(got, l.cores)
		if len(l.server) != l.cores || l.server[0] != 16 || len(l.client) != 16-l.cores || slices.Contains(l.client, l.server[len(l.server)-1]) {
			t.Errorf("%d cores: servers %v, clients %v", l.cores, l.server, l.client)
		}
	}
	if !reflect.DeepEqual(got, []int{1, 2, 4, 8}) || len(skipped) != 1 || !strings.HasPrefix(skipped[0], "12 server core(s)") {
		t.Errorf("16 CPUs: fit %v, skipped %q", got, skipped)
	}
	if _, err := parseCounts("1,x"); err == nil {
		t.Error("parseCounts accepted 1,x")
	}
	if c, err := parseCounts("1, 2,2,8"); err != nil || !reflect.DeepEqual(c, []int{1, 2, 8}) {
		t.Errorf("parseCounts: %v %v", c, err)
	}
	if l := expandList("0-2,5,7-8"); !reflect.DeepEqual(l, []int{0, 1, 2, 5, 7, 8}) {
		t.Errorf("expandList: %v", l)
	}
}

// benchrun -pin runs a program on exactly the CPUs given (what taskset
// would do), and the program's children inherit them.
func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

func TestPin(t *testing.T) {
	cpus := allowedCPUs()
	last := cpus[len(cpus)-1]
	cmd, err := command([]int{last}, 1, "/bin/sh", "-c", "grep Cpus_allowed_list /proc/self/status; echo GOMAXPROCS=$GOMAXPROCS")
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := fmt.Sprintf("Cpus_allowed_list:\t%d\nGOMAXPROCS=1\n", last)
	if string(out) != want {
		t.Errorf("pinned child printed %q, want %q", out, want)
	}
}

// pinTree pins a running process and the children it has, and those it
// forks later inherit the pin (as PostgreSQL's sessions do).
func TestPinTree(t *testing.T) {
	cpus := allowedCPUs()
	last := cpus[len(cpus)-1]
	// A parent with one child now; it forks a second once told to (a line
	// on its stdin: read is the shell's own, and forks nothing).
	cmd := exec.Command("/bin/sh", "-c", `sleep 30 & read -r line; sleep 30 & wait`)
	tell, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range childrenOf(cmd.Process.Pid) {
			_ = syscallKill(c)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	children := func(n int) []int {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if c := childrenOf(cmd.Process.Pid); len(c) >= n || time.Now().After(deadline) {
				return c
			}
		}
	}
	if c := children(1); len(c) != 1 {
		t.Fatalf("the shell has children %v, want 1", c)
	}
	if err := pinTree(cmd.Process.Pid, []int{last}); err != nil {
		t.Fatal(err)
	}
	if _, err := tell.Write([]byte("fork\n")); err != nil {
		t.Fatal(err)
	}
	all := append([]int{cmd.Process.Pid}, children(2)...)
	if len(all) != 3 {
		t.Fatalf("processes %v, want the shell and 2 children", all)
	}
	want := fmt.Sprintf("Cpus_allowed_list:\t%d\n", last)
	for _, p := range all {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(status), want) {
			t.Errorf("process %d: %q not in its status", p, want)
		}
	}
}

// The bundle `make bench-bundle` makes holds static binaries, and its
// multicore.sh — the one step for a machine with more cores — runs every
// kind of row at the one server core this machine gives, says which core
// counts it skipped, writes the tables, and leaves no process or
// directory behind. (PostgreSQL must be there under CI, as for every
// store test.)
func TestMulticoreScriptAtOneCore(t *testing.T) {
	bundle := buildBundle(t)
	for _, name := range []string{"switchyard", "benchrun", "loadgen", "grpcteams", "grpcref", "routeguide-example", "syprof"} {
		f, err := elf.Open(filepath.Join(bundle, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked: it would not run on a machine with nothing installed", name)
			}
		}
		f.Close()
	}

	// benchrun's temporary files (PostgreSQL's included) go here, which
	// must be searchable by the postgres user when the test runs as root.
	tmp := t.TempDir()
	for _, d := range []string{tmp, filepath.Dir(tmp)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, pgErr := pgtest.BinDir()
	pgMode := "auto"
	if os.Getenv("CI") != "" && os.Getenv("CI") != "false" {
		pgMode = "on"
	}
	rows := "getteam,legacygetteam,getfeature,listfeatures,recordroute,routechat,getteam-tls,listfeatures-tls,getteam-postgres,getteam-sqlite-peer,legacygetfeature,legacyroutechat"
	cmd := exec.Command(filepath.Join(bundle, "multicore.sh"), "-cores", "1,64", "-rounds", "2", "-d", "400ms", "-warmup", "100ms",
		"-only", rows, "-postgres", pgMode)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("multicore.sh: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("multicore.sh ran %v:\n%s", time.Since(start).Round(time.Second), stdout.String())
	out := stdout.String()
	for _, want := range []string{
		"64 server core(s): skipped, this machine gives",
		"### 1 server core(s)",
		"### Scaling",
		"| getteam | grpc-go map | 1 |",
		"| legacygetteam | grpc-go map | 1 |",
		"| getfeature | grpc-go | 1 |",
		"| routechat | grpc-go | 1 |",
		"| getteam-tls | grpc-go map TLS | 1 |",
		"| listfeatures-tls | grpc-go TLS | 1 |",
		"| getteam-sqlite-peer | grpc-go | 1 |",
		"| legacyroutechat | route_guide example | 1 |",
		"RSS under load",
		"PutTeam at 1.0% of the read rate",
		"Team cache of each Switchyard server",
		"Each run began once the other servers, on the same CPUs, had used under 5% of them",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if pgErr == nil {
		if !strings.Contains(out, "| getteam-postgres | grpc-go map | 1 |") {
			t.Error("PostgreSQL is installed and the PostgreSQL row is missing")
		}
		// Its peer ran beside it in each of the 2 rounds, not only in
		// the GetTeam row's place.
		if n := len(regexp.MustCompile(`(?m)^getteam-postgres +grpc-go map +[0-9]+ calls/s`).FindAllString(out, -1)); n != 2 {
			t.Errorf("the PostgreSQL row's peer ran %d times as that row, want once a round (2)", n)
		}
	} else if !strings.Contains(out, "skipping the PostgreSQL rows") {
		t.Error("without PostgreSQL the output does not say the row was skipped")
	}
	// Each row's RSS under load has its anonymous part, sampled with it:
	// more than nothing and no more than the RSS.
	scaled := regexp.MustCompile(`(?m)^\| ([a-z-]+) \|.*\| ([0-9.]+) / ([0-9.]+) \(([0-9.]+) / ([0-9.]+)\) \|$`).FindAllStringSubmatch(out, -1)
	if len(scaled) == 0 {
		t.Error("the scaling table has no row with RSS and its anonymous part")
	}
	for _, m := range scaled {
		v := make([]float64, 4)
		for i := range v {
			v[i], _ = strconv.ParseFloat(m[i+2], 64)
		}
		if v[2] <= 0 || v[2] > v[0] || v[3] <= 0 || v[3] > v[1] {
			t.Errorf("%s: RSS %.1f / %.1f MiB, anonymous %.1f / %.1f", m[1], v[0], v[1], v[2], v[3])
		}
	}
	// Every mix row's reads saw the writer's writes at least once.
	for line := range strings.Lines(out) {
		if strings.Contains(line, "writes ") && strings.Contains(line, "(seen by 0 reads)") {
			t.Errorf("writes never seen: %s", line)
		}
	}
	// Each Switchyard server's team cache answered most reads: the
	// GetTeam mix writes at 1% of them.
	for _, kind := range []string{"switchyard", "switchyard TLS", "switchyard PostgreSQL"} {
		m := regexp.MustCompile(`\| ` + kind + ` \| ([0-9.]+)% \|`).FindStringSubmatch(out)
		if m == nil {
			if kind != "switchyard PostgreSQL" || pgErr == nil {
				t.Errorf("no team cache row for %s", kind)
			}
			continue
		}
		if ratio, _ := strconv.ParseFloat(m[1], 64); ratio < 50 {
			t.Errorf("%s's team cache hit ratio %s%%", kind, m[1])
		}
	}
	md, err := os.ReadFile(filepath.Join(bundle, "scaling.md"))
	if err != nil || !bytes.Contains(md, []byte("### Scaling")) {
		t.Errorf("scaling.md: %v, %.200q", err, md)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		var names []string
		for _, e := range left {
			names = append(names, e.Name())
		}
		t.Errorf("benchrun left %s behind in its TMPDIR", strings.Join(names, ", "))
	}
}

// The ratio lines judge each target, and extra rows carry none.
func TestRatioLine(t *testing.T) {
	row := workload{name: "getteam", peer: "grpc-go-map", mix: true, target: 1.0, target1: 1.2}
	a := summary{calls: 1100, p99: 2, cpu: 20, rss: 30}
	p := summary{calls: 1000, p99: 3, cpu: 25, rss: 20}
	line := ratioLine(row, 1, a, p)
	for _, want := range []string{"throughput 1.10x (target >= 1.2x: MISSED)", "p99 0.67x (<= 1.0x: met)", "server CPU/call 0.80x (<= 1.0x: met)", "RSS under load 1.50x (<= 1.25x: MISSED)"} {
		if !strings.Contains(line, want) {
			t.Errorf("1 core: %q lacks %q", line, want)
		}
	}
	if line := ratioLine(row, 2, a, p); !strings.Contains(line, "throughput 1.10x (target >= 1.0x: met)") {
		t.Errorf("2 cores: %q", line)
	}
	row.extra = true
	if line := ratioLine(row, 1, a, p); !strings.Contains(line, "no target") || strings.Contains(line, "MISSED") {
		t.Errorf("extra row: %q", line)
	}
	if got := median([]result{{Calls: 3, Seconds: 1}, {Calls: 1, Seconds: 1}, {Calls: 2, Seconds: 1}}, result.callsPerSec); got != 2 {
		t.Errorf("median %v", got)
	}
}

// Each round's ratio pairs the two servers' runs of that round, in round
// order: calls for unary rows, messages for streams; rounds that do not
// pair up give none.
func TestRoundByRound(t *testing.T) {
	a := []result{{Calls: 120, Msgs: 1, Seconds: 1}, {Calls: 60, Msgs: 1, Seconds: 2}}
	p := []result{{Calls: 100, Msgs: 4, Seconds: 1}, {Calls: 20, Msgs: 1, Seconds: 1}}
	if got, want := roundByRound(workload{}, a, p), "; round by round 1.20, 1.50x"; got != want {
		t.Errorf("unary: %q, want %q", got, want)
	}
	if got, want := roundByRound(workload{stream: true}, a, p), "; round by round 0.25, 0.50x"; got != want {
		t.Errorf("stream: %q, want %q", got, want)
	}
	if got := roundByRound(workload{}, a, p[:1]); got != "" {
		t.Errorf("unpaired rounds: %q, want none", got)
	}
}

// A row with a peer run of its own keeps that run apart from the runs
// other rows share, and shares its Switchyard server's runs by load.
func TestRunKeyOwnPeer(t *testing.T) {
	rows := map[string]workload{}
	for _, w := range table {
		rows[w.name] = w
	}
	pg, team := rows["getteam-postgres"], rows["getteam"]
	if !pg.ownPeer || pg.peer != team.peer || pg.loadKey() != team.loadKey() {
		t.Fatalf("want the PostgreSQL row to make the GetTeam row's load on the same peer, in a run of its own: %+v", pg)
	}
	if pg.runKey(pg.peer) == team.runKey(team.peer) {
		t.Errorf("the PostgreSQL row's peer runs share the key %q with the GetTeam row's", pg.runKey(pg.peer))
	}
	if pg.runKey(pg.sy) != pg.loadKey() || team.runKey(team.peer) != team.loadKey() {
		t.Errorf("runs other than the own peer's are keyed by load: %q, %q", pg.runKey(pg.sy), team.runKey(team.peer))
	}
}

// Rows share runs only when the load generator would do the same thing
// for both: loadKey tells apart every field of a row that reaches it.
func TestLoadKeySharesOnlyTheSameLoad(t *testing.T) {
	type load struct {
		load, proto string
		conc, per   int
		mix         bool
	}
	seen := map[string]load{}
	for _, w := range table {
		l := load{w.load, w.proto, w.conc, w.per, w.mix}
		if prev, ok := seen[w.loadKey()]; ok && prev != l {
			t.Errorf("rows %+v and %+v share the load key %q", prev, l, w.loadKey())
		}
		seen[w.loadKey()] = l
	}
}

// Each server runs from a file of its own: a synced copy, not the
// bundle's file (nor a link to it, which would share its page cache),
// that runs, and that goes with its directory.
func TestOwnCopy(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exe, err := ownCopy(self, dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(filepath.Dir(exe)) != dir || filepath.Base(exe) != filepath.Base(self) {
		t.Errorf("copy at %s, want %s/<its own directory>/%s", exe, dir, filepath.Base(self))
	}
	a, errA := os.Stat(self)
	b, errB := os.Stat(exe)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	if os.SameFile(a, b) || a.Size() != b.Size() || b.Mode().Perm()&0o100 == 0 {
		t.Errorf("copy: same file %v, size %d against %d, mode %v; want a file of its own, as large, executable", os.SameFile(a, b), b.Size(), a.Size(), b.Mode())
	}
	want, _ := os.ReadFile(self)
	if got, _ := os.ReadFile(exe); !bytes.Equal(got, want) {
		t.Error("the copy's bytes differ from the executable's")
	}
	if out, err := exec.Command(exe, "-test.run=^$").CombinedOutput(); err != nil {
		t.Errorf("running the copy: %v\n%s", err, out)
	}
	other, err := ownCopy(self, dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(other) == filepath.Dir(exe) {
		t.Errorf("two copies share the directory %s", filepath.Dir(exe))
	}
	// A server run from the copy; stopping it removes the copy.
	cmd := exec.Command(exe, "-test.run=^$")
	if err := cmd.Start(); err != nil {
		t.Fatalf("running the copy: %v", err)
	}
	s := &server{exe: exe, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	stop(s)
	if _, err := os.Stat(filepath.Dir(exe)); !os.IsNotExist(err) {
		t.Errorf("after stop, the copy's directory: %v; want it removed", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("the other server's copy: %v; want it kept", err)
	}
}

// pinSelf pins every thread benchrun has, and the threads it makes
// afterwards inherit the pin.
func TestPinSelf(t *testing.T) {
	cpus := allowedCPUs()
	t.Cleanup(func() {
		if err := pinSelf(cpus); err != nil {
			t.Error(err)
		}
	})
	last := cpus[len(cpus)-1]
	if err := pinSelf([]int{last}); err != nil {
		t.Fatal(err)
	}
	// Threads made after the pin: each goroutine locked to a thread of its
	// own while the others wait, so the runtime has to start new ones.
	var wg sync.WaitGroup
	release := make(chan struct{})
	got := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var set unix.CPUSet
			_ = unix.SchedGetaffinity(0, &set)
			got <- fmt.Sprintf("thread %d: %d CPU(s), CPU %d set %v", unix.Gettid(), set.Count(), last, set.IsSet(last))
			<-release
		}()
	}
	want := fmt.Sprintf("1 CPU(s), CPU %d set true", last)
	for range 8 {
		if s := <-got; !strings.HasSuffix(s, want) {
			t.Errorf("%s, want %s", s, want)
		}
	}
	close(release)
	wg.Wait()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		status, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		if err != nil {
			continue // the thread ended
		}
		if line := fmt.Sprintf("Cpus_allowed_list:\t%d\n", last); !strings.Contains(string(status), line) {
			t.Errorf("thread %s is not pinned to CPU %d", task.Name(), last)
		}
	}
}
