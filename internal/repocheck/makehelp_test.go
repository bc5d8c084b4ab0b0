package repocheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMakeHelp: `make help` lists every documented target (those with a
// "## " comment, digits in the name included: e2e once went missing) and
// shows variables' values, not "$(ADDR)".
func TestMakeHelp(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is not installed: %v", err)
	}
	root := repoRoot(t)
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	documented := regexp.MustCompile(`(?m)^([^\s:#=]+):[^=\n]*## `).FindAllStringSubmatch(string(makefile), -1)
	if len(documented) < 10 {
		t.Fatalf("found only %d documented targets: the test is broken", len(documented))
	}
	cmd := exec.Command("make", "-s", "help")
	cmd.Dir = root
	// The defaults, not whatever the caller's environment overrides.
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "ADDR", "ARGS", "FUZZTIME", "SOAK_DURATION", "SOAK_CLIENTS", "MAKEFLAGS", "MAKELEVEL":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make help: %v\n%s", err, out)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			listed[f[0]] = true
		}
	}
	for _, m := range documented {
		if !listed[m[1]] {
			t.Errorf("make help does not list %q:\n%s", m[1], out)
		}
	}
	if strings.Contains(string(out), "$(") {
		t.Errorf("make help prints a variable's name instead of its value:\n%s", out)
	}
	if !strings.Contains(string(out), ":50051") {
		t.Errorf("make help does not show the default address :50051:\n%s", out)
	}
}
