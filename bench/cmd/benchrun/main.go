// Command benchrun measures Switchyard against the grpc-go reference server
// side by side: both servers run for the whole benchmark, pinned to one CPU
// and the load generator to another when there are at least two, and every
// workload runs in interleaved rounds (the servers' order alternating), so
// noise on a shared machine hits both alike. It prints the medians and one
// ratio line per workload, and fails when any response check failed.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// workload is one row of the benchmark; adding a workload is one line.
type workload struct {
	name string
	conc int    // concurrent calls on the one connection
	per  int    // messages per call for streaming requests
	unit string // what msgs counts
	// optional: measured only when Switchyard serves it (probed first).
	optional bool
	// stream: the target is messages/s rather than calls/s and p99.
	stream bool
	target float64 // Switchyard/grpc-go ratio the issue asks for
}

var table = []workload{
	{name: "getteam", conc: 64, unit: "calls", target: 1.0},
	{name: "legacygetteam", conc: 64, unit: "calls", optional: true, target: 1.0},
	{name: "listfeatures", conc: 16, unit: "features", stream: true, target: 1.0},
	{name: "routechat", conc: 16, per: 100, unit: "notes", stream: true, target: 0.8},
	{name: "recordroute", conc: 16, per: 100, unit: "points", stream: true, target: 0.8},
}

type result struct {
	Calls    int     `json:"calls"`
	Msgs     int     `json:"msgs"`
	Seconds  float64 `json:"seconds"`
	CallsAll int     `json:"calls_all"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Errors   int     `json:"errors"`
	FirstErr string  `json:"first_error"`
	cpuUS    float64 // server CPU per call, µs (every call, warm-up included)
}

type server struct {
	name string
	addr string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process exits
}

func main() {
	bin := flag.String("bin", ".tmp/bench", "directory holding switchyard, grpcref and loadgen")
	rounds := flag.Int("rounds", 3, "interleaved rounds")
	dur := flag.Duration("d", 5*time.Second, "measured window per run")
	warm := flag.Duration("warmup", time.Second, "warm-up per run")
	only := flag.String("only", "", "comma-separated workloads to run (default all)")
	out := flag.String("o", "", "also write the table as Markdown to this file")
	flag.Parse()
	if err := run(*bin, *rounds, *dur, *warm, *only, *out); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func run(bin string, rounds int, dur, warm time.Duration, only, out string) error {
	serverCPU, clientCPU := pinning()
	fmt.Printf("machine: %d CPUs, %s; server pinned %q, load generator pinned %q\n", runtime.NumCPU(), cpuModel(), serverCPU, clientCPU)

	// Each server keeps its teams in SQLite (switchyard's default store) in
	// a directory of its own, never the user's.
	dataDir, err := os.MkdirTemp("", "switchyard-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	sy, err := startServer("switchyard", serverCPU, bin+"/switchyard", "-addr", "127.0.0.1:"+freePort(), "-data-dir", dataDir+"/switchyard")
	if err != nil {
		return err
	}
	defer stop(sy)
	ref, err := startServer("grpc-go", serverCPU, bin+"/grpcref", "-addr", "127.0.0.1:"+freePort(), "-data-dir", dataDir+"/grpc-go")
	if err != nil {
		return err
	}
	defer stop(ref)
	servers := []*server{sy, ref}

	var wls []workload
	for _, w := range table {
		if only != "" && !slices.Contains(strings.Split(only, ","), w.name) {
			continue
		}
		if w.optional {
			if _, err := load(bin, clientCPU, sy, w, 0, 0, 200*time.Millisecond); err != nil {
				fmt.Printf("skipping %s: switchyard does not serve it on this build (%v)\n", w.name, err)
				continue
			}
		}
		wls = append(wls, w)
	}

	results := map[string]map[string][]result{} // workload → server → rounds
	seed := 1
	for r := range rounds {
		for _, w := range wls {
			order := servers
			if r%2 == 1 {
				order = []*server{ref, sy}
			}
			for _, s := range order {
				seed++
				res, err := load(bin, clientCPU, s, w, seed, warm, dur)
				if err != nil {
					return fmt.Errorf("round %d %s on %s: %w", r+1, w.name, s.name, err)
				}
				if results[w.name] == nil {
					results[w.name] = map[string][]result{}
				}
				results[w.name][s.name] = append(results[w.name][s.name], res)
				fmt.Printf("round %d %-14s %-10s %10.0f calls/s %11.0f %s/s p99 %6.2f ms  cpu %6.1f µs/call\n",
					r+1, w.name, s.name, float64(res.Calls)/res.Seconds, float64(res.Msgs)/res.Seconds, w.unit, res.P99, res.cpuUS)
			}
		}
	}
	for _, s := range servers {
		select {
		case <-s.done:
			return fmt.Errorf("%s exited during the benchmark", s.name)
		default:
		}
	}

	var md bytes.Buffer
	fmt.Fprintf(&md, "| workload | server | calls/s | msgs/s | p50 ms | p99 ms | server CPU µs/call |\n|---|---|---:|---:|---:|---:|---:|\n")
	var ratios []string
	for _, w := range wls {
		med := map[string]result{}
		for _, s := range servers {
			rs := results[w.name][s.name]
			m := result{
				Calls:   int(median(rs, func(r result) float64 { return float64(r.Calls) / r.Seconds })),
				Msgs:    int(median(rs, func(r result) float64 { return float64(r.Msgs) / r.Seconds })),
				P50:     median(rs, func(r result) float64 { return r.P50 }),
				P99:     median(rs, func(r result) float64 { return r.P99 }),
				cpuUS:   median(rs, func(r result) float64 { return r.cpuUS }),
				Seconds: 1,
			}
			med[s.name] = m
			fmt.Fprintf(&md, "| %s (%d conc) | %s | %d | %d %s | %.2f | %.2f | %.1f |\n", w.name, w.conc, s.name, m.Calls, m.Msgs, w.unit, m.P50, m.P99, m.cpuUS)
		}
		a, b := med["switchyard"], med["grpc-go"]
		if w.stream {
			ratios = append(ratios, fmt.Sprintf("ratio %-14s msgs/s %.2fx (target >= %.1fx), server CPU per call %.2fx",
				w.name, float64(a.Msgs)/float64(b.Msgs), w.target, a.cpuUS/b.cpuUS))
		} else {
			ratios = append(ratios, fmt.Sprintf("ratio %-14s throughput %.2fx (target >= %.1fx), p99 %.2fx (target <= 1.0x), server CPU per call %.2fx",
				w.name, float64(a.Calls)/float64(b.Calls), w.target, a.P99/b.P99, a.cpuUS/b.cpuUS))
		}
	}
	fmt.Fprintf(&md, "\n| server | RSS after load (MiB) | peak RSS (MiB) |\n|---|---:|---:|\n")
	rss := map[string]float64{}
	for _, s := range servers {
		cur, peak := memory(s.cmd.Process.Pid)
		rss[s.name] = cur
		fmt.Fprintf(&md, "| %s | %.1f | %.1f |\n", s.name, cur, peak)
	}
	ratios = append(ratios, fmt.Sprintf("ratio %-14s %.2fx (target <= 1.0x)", "RSS", rss["switchyard"]/rss["grpc-go"]))
	fmt.Fprintf(&md, "\nMedians of %d interleaved rounds, %s measured after %s warm-up per run.\n\n```\n%s\n```\n", rounds, dur, warm, strings.Join(ratios, "\n"))
	fmt.Print("\n" + md.String())
	if out != "" {
		return os.WriteFile(out, md.Bytes(), 0o644)
	}
	return nil
}

// pinning returns taskset CPU lists for the servers and the load generator,
// or empty ones when there is one CPU or no taskset.
func pinning() (string, string) {
	if runtime.NumCPU() < 2 {
		return "", ""
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		fmt.Println("taskset not found (util-linux): running unpinned")
		return "", ""
	}
	return "0", "1"
}

func command(cpu, name string, args ...string) *exec.Cmd {
	if cpu == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("taskset", append([]string{"-c", cpu, name}, args...)...)
}

func startServer(name, cpu, path string, args ...string) (*server, error) {
	var addr string
	for i, a := range args {
		if a == "-addr" {
			addr = args[i+1]
		}
	}
	cmd := command(cpu, path, args...)
	// Switchyard writes its one line per call here: the write is paid,
	// the storage is not.
	cmd.Stdout, cmd.Stderr = io.Discard, nil
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &server{name: name, addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop(s)
	return nil, fmt.Errorf("%s did not listen on %s", name, addr)
}

func stop(s *server) {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// load runs the load generator once against s and measures the server's
// CPU time over the run.
func load(bin, cpu string, s *server, w workload, seed int, warm, dur time.Duration) (result, error) {
	pid := s.cmd.Process.Pid
	before := cpuTicks(pid)
	cmd := command(cpu, bin+"/loadgen", "-addr", s.addr, "-workload", w.name, "-c", strconv.Itoa(w.conc),
		"-n", strconv.Itoa(max(w.per, 1)), "-seed", strconv.Itoa(seed), "-warmup", warm.String(), "-d", dur.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	after := cpuTicks(pid)
	var res result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return res, fmt.Errorf("loadgen: %v: %s%s", runErr, stderr.String(), stdout.String())
	}
	if res.Errors > 0 {
		return res, fmt.Errorf("%d failed response checks, first: %s", res.Errors, res.FirstErr)
	}
	if runErr != nil {
		return res, fmt.Errorf("loadgen: %v: %s", runErr, stderr.String())
	}
	if res.CallsAll > 0 {
		res.cpuUS = float64(after-before) / clockTicks * 1e6 / float64(res.CallsAll)
	}
	return res, nil
}

// clockTicks is USER_HZ, 100 on every Linux the benchmark runs on.
const clockTicks = 100

// cpuTicks is the user+system time of pid in clock ticks.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at ")".
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// memory returns VmRSS and VmHWM of pid in MiB.
func memory(pid int) (rss, peak float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		switch k {
		case "VmRSS":
			rss = kb / 1024
		case "VmHWM":
			peak = kb / 1024
		}
	}
	return rss, peak
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func median(rs []result, f func(result) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}
