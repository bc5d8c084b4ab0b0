package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// runDevice runs the bundle's device.sh with env (besides the test's own)
// and returns its output; TMPDIR is tmp, which it must leave empty.
func runDevice(t *testing.T, bundle, tmp string, env ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bundle, "device.sh"), "-postgres", "off")
	cmd.Env = append(append(os.Environ(), "TMPDIR="+tmp), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("device.sh: %v\n%s", err, out)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("device.sh left %d entries in its TMPDIR (first %s)", len(left), left[0].Name())
	}
	return string(out)
}

// device.sh — the one prepared command for a lent many-core machine —
// checks that pinning holds, runs the rows at each core count the machine
// gives, says which it skipped, profiles Switchyard at the largest count,
// and leaves its results in at most eight plainly named files in $OUT.
func TestDeviceScriptAtOneCore(t *testing.T) {
	bundle := buildBundle(t)
	out := t.TempDir()
	log := runDevice(t, bundle, t.TempDir(), "OUT="+out, "BUDGET=300", "COUNTS=64 1", "ROWS=getteam,getfeature",
		"ROUNDS=1", "WARMUP=0.2", "D=0.4", "PROFILE_S=0.5")
	t.Logf("device.sh:\n%s", log)

	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if e.IsDir() || !regexp.MustCompile(`^[A-Za-z0-9._-]+$`).MatchString(e.Name()) {
			t.Errorf("$OUT holds %q: the tool returns plain files named in letters, digits, '.', '_' and '-'", e.Name())
		}
	}
	if want := []string{"log.txt", "machine.txt", "profiles.tar.gz", "scaling.md"}; !slices.Equal(names, want) {
		t.Errorf("$OUT holds %v, want %v", names, want)
	}
	saved, _ := os.ReadFile(filepath.Join(out, "log.txt"))
	if !strings.Contains(string(saved), "== device.sh done") {
		t.Errorf("log.txt lacks the script's last line:\n%s", saved)
	}
	machine, _ := os.ReadFile(filepath.Join(out, "machine.txt"))
	if !regexp.MustCompile(`pinning: two spinners pinned to CPU [0-9]+ used [0-9.]+ CPU-seconds in 2 s: held`).Match(machine) {
		t.Errorf("machine.txt does not say that pinning held:\n%s", machine)
	}
	if !strings.Contains(log, "64 server core(s): skipped, this machine gives") {
		t.Error("the log does not say that 64 server cores were skipped")
	}
	scaling, _ := os.ReadFile(filepath.Join(out, "scaling.md"))
	for _, want := range []string{"| getteam | grpc-go map | 1 |", "| getfeature | grpc-go | 1 |"} {
		if !bytes.Contains(scaling, []byte(want)) {
			t.Errorf("scaling.md lacks %q", want)
		}
	}

	// The profiles: at 1 server core (64 does not fit), both workloads,
	// each file whole, the load behind them served without errors.
	files := untar(t, filepath.Join(out, "profiles.tar.gz"))
	for _, w := range []string{"getfeature", "getteam"} {
		for _, kind := range []string{"cpu", "mutex", "block"} {
			p := files["profiles/"+kind+"-"+w+"-1.pprof"]
			if len(p) < 2 || p[0] != 0x1f || p[1] != 0x8b {
				t.Errorf("%s profile of %s: %d bytes, not a gzipped pprof profile", kind, w, len(p))
			}
		}
		m := string(files["profiles/metrics-"+w+"-1.txt"])
		lat := regexp.MustCompile(`(?m)^/sched/latencies:seconds +count ([0-9]+) p50≤`).FindStringSubmatch(m)
		if lat == nil || lat[1] == "0" {
			t.Errorf("metrics of %s: no scheduling latencies:\n%s", w, m)
		}
		if !regexp.MustCompile(`(?m)^/sync/mutex/wait/total:seconds +\+[0-9.e-]+$`).MatchString(m) {
			t.Errorf("metrics of %s: no mutex wait", w)
		}
		if !regexp.MustCompile(`(?m)^/sched/gomaxprocs:threads +1$`).MatchString(m) {
			t.Errorf("metrics of %s: the server did not run with GOMAXPROCS=1", w)
		}
		for _, mode := range []string{"cpu", "lock"} {
			var r struct {
				Calls, Errors int
			}
			name := "profiles/loadgen-" + w + "-" + mode + "-1.json"
			if err := json.Unmarshal(files[name], &r); err != nil || r.Calls == 0 || r.Errors != 0 {
				t.Errorf("%s: %v, %+v", name, err, r)
			}
		}
	}
}

// A step that does not fit what is left of the budget is skipped and
// named; the script still ends cleanly, with what it made.
func TestDeviceScriptBudget(t *testing.T) {
	bundle := buildBundle(t)
	out := t.TempDir()
	log := runDevice(t, bundle, t.TempDir(), "OUT="+out, "BUDGET=4", "COUNTS=1", "ROWS=getteam,getfeature", "PROFILES=getfeature")
	for _, step := range []string{"1 server core(s)", "profile getfeature cpu at 1 server core(s)", "profile getfeature lock at 1 server core(s)"} {
		if !regexp.MustCompile(regexp.QuoteMeta("== "+step+": skipped, it needs about ") + `[0-9.]+ s and -?[0-9]+ s of the budget \(4 s\) are left`).MatchString(log) {
			t.Errorf("the log does not say %q was skipped:\n%s", step, log)
		}
	}
	for _, name := range []string{"scaling.md", "profiles.tar.gz"} {
		if _, err := os.Stat(filepath.Join(out, name)); err == nil {
			t.Errorf("%s made, though no step fitted", name)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "machine.txt")); err != nil {
		t.Error(err)
	}
}

func untar(t *testing.T, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = b
		}
	}
}
