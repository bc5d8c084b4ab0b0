package repocheck

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMELayoutIsComplete: the README's Layout block names every
// top-level directory and every package under internal/ and services/
// (it once missed internal/democlient, internal/pgtest,
// internal/grpcwebtext, services/teams/sqlstore and storetest, bench/ and
// .ci/). A name with a <placeholder> element stands for any one element:
// services/<svc>/ covers services/teams but not services/teams/sqlstore.
func TestREADMELayoutIsComplete(t *testing.T) {
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	listed := layoutEntries(t, string(readme))

	var dirs []string // top-level directories and Go packages to find listed
	for _, f := range trackedFiles(t) {
		top, _, nested := strings.Cut(f.path, "/")
		if nested {
			dirs = append(dirs, top)
		}
		dir := path.Dir(f.path)
		if (strings.HasPrefix(dir, "internal/") || strings.HasPrefix(dir, "services/")) &&
			strings.HasSuffix(f.path, ".go") && !strings.Contains(dir, "/testdata") {
			dirs = append(dirs, dir)
		}
	}
	slices.Sort(dirs)
	for _, dir := range slices.Compact(dirs) {
		if !layoutNames(listed, dir) {
			t.Errorf("README's Layout does not name %s/: add a line saying what it holds", dir)
		}
	}
}

// layoutEntries returns the paths in the first column of the fenced block
// under "## Layout", split at ", ".
func layoutEntries(t *testing.T, readme string) []string {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n## Layout\n")
	if !ok {
		t.Fatal(`README.md has no "## Layout" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```\n")
	if !ok {
		t.Fatal("README's Layout section has no code block")
	}
	block, _, _ = strings.Cut(block, "```")
	var entries []string
	for _, line := range strings.Split(block, "\n") {
		first := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), 2)[0]
		for _, e := range strings.Split(first, ", ") {
			if e = strings.Trim(strings.TrimSpace(e), "/"); e != "" {
				entries = append(entries, e)
			}
		}
	}
	if len(entries) < 10 {
		t.Fatalf("only %d entries in README's Layout: the test is broken", len(entries))
	}
	return entries
}

// layoutNames reports whether an entry names dir: equal to it element by
// element (a <placeholder> matching any), or, for a top-level directory,
// any entry inside it.
func layoutNames(entries []string, dir string) bool {
	want := strings.Split(dir, "/")
	for _, e := range entries {
		got := strings.Split(e, "/")
		if len(want) == 1 && got[0] == dir {
			return true
		}
		if len(got) != len(want) {
			continue
		}
		match := true
		for i := range got {
			if got[i] != want[i] && !(strings.HasPrefix(got[i], "<") && strings.HasSuffix(got[i], ">")) {
				match = false
			}
		}
		if match {
			return true
		}
	}
	return false
}
