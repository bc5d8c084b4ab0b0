// Command compare runs h2spec against switchyard's two HTTP/2 servers —
// internal/h2 (-http2-server switchyard) and net/http's own
// (-http2-server net/http) — a fixed number of times each, every run
// against a fresh process on a free port, and fails when a test that
// passes on net/http's server fails on internal/h2 in any run. It lists
// the tests both fail. `make h2spec` runs it (part of `make test`).
package main

import (
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	switchyard := flag.String("switchyard", "bin/switchyard", "the switchyard binary")
	h2spec := flag.String("h2spec", ".tmp/bin/h2spec", "the h2spec binary")
	runs := flag.Int("runs", 3, "runs against each server")
	path := flag.String("path", "/", "the request path h2spec uses: one whose response has a body (the console page), so tests that need DATA frames or an open stream do not depend on how fast a handler ends")
	flag.Parse()
	if err := run(*switchyard, *h2spec, *path, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "h2spec compare:", err)
		os.Exit(1)
	}
}

// servers are the two implementations compared, by -http2-server value.
var servers = []string{"switchyard", "net/http"}

// outcome of one test in one run.
type outcome struct {
	passed bool
	detail string // why it failed
}

func run(switchyard, h2spec, path string, runs int) error {
	dir, err := os.MkdirTemp("", "switchyard-h2spec-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// results[server][test] holds one outcome per run.
	results := map[string]map[string][]outcome{}
	titles := map[string]string{}
	for r := range runs {
		for _, srv := range servers {
			got, err := runOnce(switchyard, h2spec, path, srv, filepath.Join(dir, fmt.Sprintf("%d-%s", r, strings.ReplaceAll(srv, "/", "-"))))
			if err != nil {
				return fmt.Errorf("run %d, -http2-server %s: %w", r+1, srv, err)
			}
			if results[srv] == nil {
				results[srv] = map[string][]outcome{}
			}
			passed := 0
			for id, c := range got {
				titles[id] = c.title
				results[srv][id] = append(results[srv][id], c.outcome)
				if c.passed {
					passed++
				}
			}
			fmt.Printf("run %d  -http2-server %-10s  %d of %d passed\n", r+1, srv, passed, len(got))
		}
	}

	var ids []string
	for id := range titles {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareIDs)
	var worse, both []string
	for _, id := range ids {
		std, own := results["net/http"][id], results["switchyard"][id]
		stdPasses := slices.ContainsFunc(std, func(o outcome) bool { return o.passed })
		for i, o := range own {
			if stdPasses && !o.passed {
				worse = append(worse, fmt.Sprintf("  %s %s (run %d): %s", id, titles[id], i+1, o.detail))
			}
		}
		if !slices.ContainsFunc(std, func(o outcome) bool { return o.passed }) &&
			!slices.ContainsFunc(own, func(o outcome) bool { return o.passed }) {
			both = append(both, fmt.Sprintf("  %s %s", id, titles[id]))
		}
	}
	if len(both) > 0 {
		fmt.Printf("\nfailed on both servers in every run (see BENCHMARKS.md, \"HTTP/2 conformance\"):\n%s\n", strings.Join(both, "\n"))
	}
	if len(worse) > 0 {
		return fmt.Errorf("internal/h2 failed tests that net/http's server passes:\n%s", strings.Join(worse, "\n"))
	}
	fmt.Printf("\ninternal/h2 passed every test net/http's server passed, in %d runs each\n", runs)
	return nil
}

// testCase is one h2spec test's result, keyed by its ID ("http2/6.5/1").
type testCase struct {
	title string
	outcome
}

// runOnce starts switchyard with -http2-server srv and runs h2spec at it.
func runOnce(switchyard, h2spec, path, srv, dir string) (map[string]testCase, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(switchyard, "-addr", addr, "-http2-server", srv, "-data-dir", filepath.Join(dir, "data"), "-log-level", "error")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	if err := waitListening(addr, 10*time.Second); err != nil {
		return nil, err
	}
	report := filepath.Join(dir, "junit.xml")
	h := exec.Command(h2spec, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-P", path, "-j", report)
	_ = h.Run() // exits non-zero when any test fails; the report says which
	return readReport(report)
}

func waitListening(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("switchyard did not listen on %s", addr)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// The JUnit report h2spec writes (-j).
type junit struct {
	Suites []struct {
		Package string `xml:"package,attr"`
		Cases   []struct {
			Title   string    `xml:"classname,attr"`
			Error   *struct{} `xml:"error"`
			Failure *struct{} `xml:"failure"`
			Skipped *struct{} `xml:"skipped"`
			Text    string    `xml:",innerxml"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readReport(path string) (map[string]testCase, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r junit
	if err := xml.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := map[string]testCase{}
	for _, s := range r.Suites {
		for i, c := range s.Cases {
			if c.Skipped != nil {
				continue
			}
			id := fmt.Sprintf("%s/%d", s.Package, i+1)
			failed := c.Error != nil || c.Failure != nil
			detail := ""
			if failed {
				detail = strings.Join(strings.Fields(stripTags(c.Text)), " ")
			}
			out[id] = testCase{title: c.Title, outcome: outcome{passed: !failed, detail: detail}}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("h2spec reported no tests")
	}
	return out, nil
}

func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// compareIDs orders "http2/6.10/2" after "http2/6.9/1": by section
// numbers, then test number.
func compareIDs(a, b string) int {
	pa, pb := strings.FieldsFunc(a, sep), strings.FieldsFunc(b, sep)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		switch {
		case ea == nil && eb == nil && na != nb:
			return na - nb
		case (ea != nil || eb != nil) && pa[i] != pb[i]:
			return strings.Compare(pa[i], pb[i])
		}
	}
	return len(pa) - len(pb)
}

func sep(r rune) bool { return r == '/' || r == '.' }
