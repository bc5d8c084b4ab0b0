package check

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// verifyUnit runs systemd-analyze verify on unit inside a private root
// that holds the switchyard binary where ExecStart expects it.
func verifyUnit(t *testing.T, unit []byte) (string, error) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" && os.Getenv("CI") != "false" {
			t.Fatalf("CI: no systemd-analyze (apt-get install systemd): %v", err)
		}
		t.Skip("\n!!!!!!!! SKIPPING: no systemd-analyze (apt-get install systemd) !!!!!!!!")
	}
	root := t.TempDir()
	bin := filepath.Join(root, "usr", "local", "bin", "switchyard")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(switchyard(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	// The units switchyard.service depends on (sysinit.target and the
	// rest of the default dependencies) come from the host, read-only.
	sys := filepath.Join(root, "usr", "lib", "systemd")
	if err := os.MkdirAll(sys, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", sys).CombinedOutput(); err != nil {
		t.Fatalf("copying the host's units: %v\n%s", err, out)
	}
	unitDir := filepath.Join(root, "etc", "systemd", "system")
	if err := os.MkdirAll(unitDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(unitDir, "switchyard.service")
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--root="+root, path).CombinedOutput()
	return string(out), err
}

func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile(repo("deploy/systemd/switchyard.service"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := verifyUnit(t, unit)
	if err != nil || strings.Contains(out, "switchyard.service:") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(unit), "\n") {
		if cmd, ok := strings.CutPrefix(line, "ExecStart="); ok {
			checkFlags(t, "ExecStart", strings.Fields(cmd)[1:])
		}
	}
}

// systemd-analyze verify can fail: a misspelt directive is reported.
func TestSystemdVerifyRejectsNonsense(t *testing.T) {
	out, err := verifyUnit(t, []byte("[Service]\nExecStart=/usr/local/bin/switchyard\nRestartt=always\n"))
	if err == nil && !strings.Contains(out, "Restartt") {
		t.Errorf("a misspelt directive passed verify:\n%s", out)
	}
}
