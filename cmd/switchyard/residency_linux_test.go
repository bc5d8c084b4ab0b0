package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
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
	released, err := releaseStartupPages(false)
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

// exeDataMapping is the executable's read-only data mapping.
func exeDataMapping(t *testing.T) exeMapping {
	t.Helper()
	maps, err := exeMappings()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range maps {
		if !m.exec {
			return m
		}
	}
	t.Fatalf("no read-only data mapping of the executable in /proc/self/maps: %+v", maps)
	return exeMapping{}
}

// cachedPages counts the pages of f's bytes [off, off+n) in the page
// cache (mincore on a mapping of them, which reads nothing in).
func cachedPages(t *testing.T, f *os.File, off, n int64) int {
	t.Helper()
	m, err := unix.Mmap(int(f.Fd()), off, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Munmap(m) }()
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	cached := 0
	for _, v := range vec {
		cached += int(v & 1)
	}
	return cached
}

// With trim, the executable's read-only data mapping is read a page at a
// time from then on (VmFlags "rr"), and the pages of it that no one maps
// leave the page cache, where the file system lets them (tmpfs keeps its
// pages: they are the file's only copy).
func TestTrimReadOnlyData(t *testing.T) {
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = exe.Close() }()
	// The test binary was written moments ago; a dirty page cannot leave
	// the cache. A deployed binary's pages are clean.
	if err := exe.Sync(); err != nil {
		t.Fatal(err)
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(exe.Fd()), &fs); err != nil {
		t.Fatal(err)
	}
	m := exeDataMapping(t)
	before := cachedPages(t, exe, m.off, m.len)

	if _, err := releaseStartupPages(true); err != nil {
		t.Fatal(err)
	}
	after := cachedPages(t, exe, m.off, m.len)
	t.Logf("read-only data %s: %d of %d pages cached → %d", m.addr, before, m.len/int64(os.Getpagesize()), after)

	path, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	if flags := mappingFlags(t, os.Getpid(), path, "r--p"); !strings.Contains(" "+flags+" ", " rr ") {
		t.Errorf("mapping %s after trim: VmFlags %q, want rr (MADV_RANDOM)", m.addr, flags)
	}
	switch {
	case fs.Type == unix.TMPFS_MAGIC:
		if after < before {
			t.Errorf("on tmpfs %d cached pages became %d; tmpfs cannot drop them", before, after)
		}
	case after*2 > before:
		t.Errorf("%d of the mapping's pages were cached before the trim and %d after: want under half", before, after)
	}
	if _, err := parseFlags(nil, nil); err != nil { // code and tables that ran at start run again
		t.Fatal(err)
	}
}
