package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchyard/switchyard/bench/internal/proc"
)

// result is one load generator run against one server, with what
// benchrun measured of the server meanwhile.
type result struct {
	Calls      int     `json:"calls"`
	Msgs       int     `json:"msgs"`
	Seconds    float64 `json:"seconds"`
	CallsAll   int     `json:"calls_all"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	Errors     int     `json:"errors"`
	FirstErr   string  `json:"first_error"`
	ClientCPU  float64 `json:"client_cpu_us_per_call"`
	WritesSeen int     `json:"writes_seen"`
	Refused    int     `json:"refused"` // streams the server refused, made again
	Writer     *struct {
		Writes    int     `json:"writes"`
		WritesAll int     `json:"writes_all"`
		Seconds   float64 `json:"seconds"`
		P99       float64 `json:"p99_ms"`
		Errors    int     `json:"errors"`
		FirstErr  string  `json:"first_error"`
		CPU       float64 `json:"cpu_us_per_write"`
	} `json:"writer"`

	cpuUS   float64 // server CPU per call, µs: every read and write, warm-up included
	rssMiB  float64 // the server's largest RSS sampled while the load ran
	anonMiB float64 // the anonymous part of that sample (heap, stacks; not the executable's pages)
	load1   float64 // the machine's 1-minute load average as the run began
	others  float64 // the share of the server CPUs the other servers used meanwhile
	tries   int     // runs made for this one (quietRun)
}

func (r result) callsPerSec() float64 { return float64(r.Calls) / r.Seconds }
func (r result) msgsPerSec() float64  { return float64(r.Msgs) / r.Seconds }

// writesPerSec is the writer's acknowledged PutTeam rate in the window.
func (r result) writesPerSec() float64 {
	if r.Writer == nil || r.Writer.Seconds == 0 {
		return 0
	}
	return float64(r.Writer.Writes) / r.Writer.Seconds
}

// runParams are the load generator settings of one run.
type runParams struct {
	unknown, writeShare float64
	warm, dur           time.Duration
	seed                int
}

// load runs the load generator once against s — one connection per
// server core, pinned to the client CPUs — and measures the server's CPU
// time over the run and its RSS during it.
func load(bin string, l layout, s *server, w workload, p runParams, f files) (result, error) {
	args := []string{"-addr", s.addr, "-workload", w.load, "-conns", strconv.Itoa(l.cores), "-c", strconv.Itoa(w.conc),
		"-n", strconv.Itoa(max(w.per, 1)), "-seed", strconv.Itoa(p.seed), "-warmup", p.warm.String(), "-d", p.dur.String()}
	if w.proto != "" {
		args = append(args, "-protocol", w.proto)
	}
	if w.mix {
		args = append(args, "-unknown", fmt.Sprint(p.unknown), "-write-share", fmt.Sprint(p.writeShare), "-admin-token-file", f.token)
	}
	if s.kind.tls {
		args = append(args, "-tls", "-cacert", f.cert)
	}
	cmd, err := command(l.client, len(l.client), filepath.Join(bin, "loadgen"), args...)
	if err != nil {
		return result{}, err
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	pid := s.cmd.Process.Pid
	load1 := loadAverage()
	before := proc.CPUTime(pid)
	sampled := make(chan proc.Mem, 1)
	stopSampling := make(chan struct{})
	go func() { sampled <- sampleRSS(pid, stopSampling) }()
	runErr := cmd.Run()
	close(stopSampling)
	after := proc.CPUTime(pid)
	mem := <-sampled
	res := result{rssMiB: mem.RSS, anonMiB: mem.Anon, load1: load1}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return res, fmt.Errorf("loadgen: %v: %s%s", runErr, stderr.String(), stdout.String())
	}
	if res.Errors > 0 {
		return res, fmt.Errorf("%d failed response checks, first: %s", res.Errors, res.FirstErr)
	}
	if res.Writer != nil && res.Writer.Errors > 0 {
		return res, fmt.Errorf("writer: %d failed PutTeam checks, first: %s", res.Writer.Errors, res.Writer.FirstErr)
	}
	if runErr != nil {
		return res, fmt.Errorf("loadgen: %v: %s", runErr, stderr.String())
	}
	calls := res.CallsAll
	if res.Writer != nil {
		calls += res.Writer.WritesAll
	}
	if calls > 0 {
		res.cpuUS = float64((after - before).Microseconds()) / float64(calls)
	}
	return res, nil
}

// sampleRSS reads pid's memory every 50 ms until stop and returns the
// sample with the largest RSS: memory under load, not after it.
func sampleRSS(pid int, stop <-chan struct{}) proc.Mem {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var peak proc.Mem
	for {
		if cur := proc.Memory(pid); cur.RSS > peak.RSS {
			peak = cur
		}
		select {
		case <-stop:
			return peak
		case <-t.C:
		}
	}
}

// loadAverage is the machine's 1-minute load average (as uptime prints),
// 0 when /proc/loadavg cannot be read.
func loadAverage() float64 {
	v, _ := strconv.ParseFloat(strings.Fields(loadAvgLine())[0], 64)
	return v
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

// measurements hold every run's result: core count → row key → server →
// one result per round.
type measurements struct {
	mu sync.Mutex
	m  map[int]map[string]map[string][]result
}

func (m *measurements) add(cores int, key, server string, r result) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[int]map[string]map[string][]result{}
	}
	if m.m[cores] == nil {
		m.m[cores] = map[string]map[string][]result{}
	}
	if m.m[cores][key] == nil {
		m.m[cores][key] = map[string][]result{}
	}
	m.m[cores][key][server] = append(m.m[cores][key][server], r)
}

func (m *measurements) get(cores int, key, server string) []result {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m[cores][key][server]
}

// disturbed counts the runs kept, the runs made again (quietRun), and the
// runs kept although the other servers were busy during every try.
func (m *measurements) disturbed() (kept, again, busy int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, keys := range m.m {
		for _, servers := range keys {
			for _, rs := range servers {
				for _, r := range rs {
					kept++
					again += max(r.tries-1, 0)
					if r.others > othersQuiet {
						busy++
					}
				}
			}
		}
	}
	return kept, again, busy
}
