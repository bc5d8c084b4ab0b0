package repocheck

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// repoRoot is the top of the working tree the tests run in.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse --show-toplevel: %v (the tests need a git checkout)", err)
	}
	return strings.TrimSpace(string(out))
}

// git runs git in the repository root with stdin and returns its output.
func git(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = repoRoot(t)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// trackedEntry is a file in git's index.
type trackedEntry struct {
	mode string // "100644", "100755", "120000" (symlink), "160000" (submodule)
	path string
}

// trackedFiles lists the files in the index, as a fresh clone has them.
func trackedFiles(t *testing.T) []trackedEntry {
	t.Helper()
	var out []trackedEntry
	for _, rec := range strings.Split(git(t, "", "ls-files", "-s", "-z"), "\x00") {
		if rec == "" {
			continue
		}
		// "<mode> <object> <stage>\t<path>"
		meta, path, ok := strings.Cut(rec, "\t")
		if !ok {
			t.Fatalf("git ls-files -s: unexpected record %q", rec)
		}
		out = append(out, trackedEntry{mode: strings.Fields(meta)[0], path: path})
	}
	return out
}

// ignored returns the subset of paths (relative to the root) that
// .gitignore ignores, whether or not they exist.
func ignored(t *testing.T, paths []string) map[string]bool {
	t.Helper()
	if len(paths) == 0 {
		return nil
	}
	cmd := exec.Command("git", "check-ignore", "--no-index", "--stdin")
	cmd.Dir = repoRoot(t)
	cmd.Stdin = strings.NewReader(strings.Join(paths, "\n") + "\n")
	out, err := cmd.Output()
	// Exit status 1 means "none of them is ignored".
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 1) {
		t.Fatalf("git check-ignore: %v", err)
	}
	set := map[string]bool{}
	for _, p := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if p != "" {
			set[p] = true
		}
	}
	return set
}
