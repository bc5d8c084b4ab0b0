package repocheck

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Build outputs must never be committed (three were: a 20 MB soak binary at
// the root, bench/grpcref and bench/cmd/loadgen/loadgen). The rule:
//
//   - no tracked file is an executable binary (ELF, Mach-O or PE), whatever
//     its mode bits: a binary committed without the executable bit is still
//     a build output;
//   - a tracked file with the executable bit must be a script that starts
//     with "#!": an interpreter line is what makes an executable file
//     source, and anything else with the bit set (a binary in an unknown
//     format, a data file marked executable by accident) is a mistake.
//
// Content is read from the index (git show :path), not the working tree, so
// the test judges what a commit would hold.

// binaryMagic are the first bytes of executable formats.
var binaryMagic = []struct {
	name  string
	magic []byte
}{
	{"ELF", []byte{0x7f, 'E', 'L', 'F'}},
	{"Mach-O", []byte{0xcf, 0xfa, 0xed, 0xfe}},
	{"Mach-O", []byte{0xce, 0xfa, 0xed, 0xfe}},
	{"Mach-O universal", []byte{0xca, 0xfe, 0xba, 0xbe}},
	{"PE (Windows)", []byte{'M', 'Z'}},
}

// executableProblem says why head, the start of a tracked file with mode
// mode, may not be committed, or returns "".
func executableProblem(mode string, head []byte) string {
	for _, m := range binaryMagic {
		if bytes.HasPrefix(head, m.magic) {
			return "is an " + m.name + " executable (a build output)"
		}
	}
	if mode == "100755" && !bytes.HasPrefix(head, []byte("#!")) {
		return "has the executable bit but is not a script starting with #!"
	}
	return ""
}

func TestNoTrackedExecutables(t *testing.T) {
	root := repoRoot(t)
	for _, f := range trackedFiles(t) {
		if f.mode != "100644" && f.mode != "100755" {
			continue // symlinks and submodules have no content of their own
		}
		head, err := readHead(filepath.Join(root, f.path))
		if err != nil {
			t.Errorf("%s: %v", f.path, err)
			continue
		}
		if p := executableProblem(f.mode, head); p != "" {
			t.Errorf("%s %s: remove it (git rm --cached) and ignore it in .gitignore", f.path, p)
		}
	}
}

// readHead returns the first bytes of a file.
func readHead(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 8)
	n, _ := f.Read(buf)
	return buf[:n], nil
}

func TestExecutableRule(t *testing.T) {
	for _, tc := range []struct {
		mode, head string
		bad        bool
	}{
		{"100755", "#!/usr/bin/env bash\n", false},
		{"100644", "package main\n", false},
		{"100644", "\x7fELF\x02\x01", true}, // a binary without the x bit
		{"100755", "\x7fELF\x02\x01", true},
		{"100755", "\xcf\xfa\xed\xfe", true},
		{"100755", "package main\n", true}, // executable but no interpreter line
		{"100755", "", true},
		{"100644", "", false},
	} {
		if got := executableProblem(tc.mode, []byte(tc.head)) != ""; got != tc.bad {
			t.Errorf("mode %s, content %q: rejected = %v, want %v", tc.mode, tc.head, got, tc.bad)
		}
	}
}

// TestBuildOutputsIgnored: `go build` in a command's directory writes a
// binary named after the directory there, and `go build ./cmd/x` at the top
// of a module writes it at the top; both must be ignored, for every command
// (package main) in the tree, so a stray build cannot be committed.
func TestBuildOutputsIgnored(t *testing.T) {
	root := repoRoot(t)
	var modules, mains []string // directories, relative to the root
	for _, f := range trackedFiles(t) {
		dir := path.Dir(f.path)
		switch {
		case path.Base(f.path) == "go.mod":
			modules = append(modules, dir)
		case strings.HasSuffix(f.path, ".go") && !strings.HasSuffix(f.path, "_test.go"):
			if !slices.Contains(mains, dir) && isPackageMain(t, filepath.Join(root, f.path)) {
				mains = append(mains, dir)
			}
		}
	}
	if len(mains) == 0 {
		t.Fatal("found no package main: the test is broken")
	}
	var outputs []string
	for _, dir := range mains {
		name := path.Base(dir)
		outputs = append(outputs, path.Join(dir, name))
		// At the module's top, unless that is the command's own directory
		// (go build refuses to write over a directory).
		if top := path.Join(enclosingModule(modules, dir), name); top != dir {
			outputs = append(outputs, top)
		}
	}
	slices.Sort(outputs)
	outputs = slices.Compact(outputs)
	got := ignored(t, outputs)
	for _, o := range outputs {
		if !got[o] {
			t.Errorf("%s (a `go build` output) is not ignored: add /%s to .gitignore", o, o)
		}
	}
}

// isPackageMain reports whether a Go file declares package main.
func isPackageMain(t *testing.T, name string) bool {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "package "); ok {
			return strings.TrimSpace(rest) == "main"
		}
	}
	return false
}

// enclosingModule is the deepest module directory holding dir.
func enclosingModule(modules []string, dir string) string {
	best := "."
	for _, m := range modules {
		if (m == "." || dir == m || strings.HasPrefix(dir, m+"/")) && len(m) > len(best) {
			best = m
		}
	}
	return best
}
