package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssFile is this process's resident file-backed memory, in KiB.
func rssFile(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// The executable's read-only pages leave the resident set, and the
// process runs on (its code is mapped back as it is used).
func TestReleaseStartupPages(t *testing.T) {
	before := rssFile(t)
	released, err := releaseStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFile(t)
	t.Logf("released %d KiB of mappings; resident file pages %d → %d KiB", released>>10, before, after)
	if released == 0 || after >= before {
		t.Errorf("released %d bytes of mappings, resident file pages %d → %d KiB: nothing left the resident set", released, before, after)
	}
	if _, err := parseFlags(nil, nil); err != nil { // code that ran at start runs again
		t.Fatal(err)
	}
}
