package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// releaseStartupPages drops from this process's resident set the pages of
// its own executable that starting up touched and serving may not need:
// package initializers, flag parsing, the store's migrations, and every
// page the kernel mapped around them (a fault maps up to 64 KiB around
// the page touched). They stay in the page cache; a page the server uses
// again is mapped back by a minor fault, once. Only the executable's
// read-only mappings (code, read-only data) are released: their pages are
// never modified, so nothing is lost. Measured under the GetTeam mix, the
// binary's resident pages fell by about 3 MiB (BENCHMARKS.md).
//
// With trim, the read-only data mapping gets more (trimReadOnlyData): its
// pages leave the page cache too, and the kernel reads it page by page
// from then on.
func releaseStartupPages(trim bool) (released int, err error) {
	maps, err := exeMappings()
	if err != nil {
		return 0, err
	}
	var data []exeMapping // the read-only data mappings
	for _, m := range maps {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.start, uintptr(m.len), syscall.MADV_DONTNEED); errno != 0 {
			return released, fmt.Errorf("madvise %s: %w", m.addr, errno)
		}
		released += int(m.len)
		if trim && !m.exec {
			data = append(data, m)
		}
	}
	if !trim {
		return released, nil
	}
	return released, trimReadOnlyData(data)
}

// exeMapping is one of the executable's read-only mappings: where it is,
// which bytes of the file it maps, and whether it is code.
type exeMapping struct {
	addr     string // as /proc/self/maps writes it
	start    uintptr
	len, off int64
	exec     bool
}

// exeMappings reads this process's read-only mappings of its own
// executable from /proc/self/maps.
func exeMappings() ([]exeMapping, error) {
	var self syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &self); err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var maps []exeMapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || strings.Contains(fields[1], "w") {
			continue
		}
		if inode, err := strconv.ParseUint(fields[4], 10, 64); err != nil || inode != self.Ino || !sameDevice(fields[3], self.Dev) {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseInt(fields[2], 16, 64)
		if !ok || err1 != nil || err2 != nil || err3 != nil || end <= start {
			continue
		}
		maps = append(maps, exeMapping{addr: fields[0], start: uintptr(start), len: int64(end - start), off: off, exec: strings.Contains(fields[1], "x")})
	}
	return maps, sc.Err()
}

// trimReadOnlyData keeps only what serving reads of the executable's
// read-only data mapping resident. That mapping holds the function
// tables (.gopclntab: the stack copies and the collector's stack scans
// read a few bytes per frame), type data and strings: about 13 MiB, of
// which serving the GetTeam mix reads under 3.5. But its pages are in
// the page cache from start-up, and the kernel maps the cached pages up
// to 64 KiB around each page read, so about 9 MiB of it was resident
// under load.
//
// So its pages leave the page cache (POSIX_FADV_DONTNEED; a page another
// process maps stays), and MADV_RANDOM tells the kernel to read the
// mapping a page at a time from then on, not the device's read-ahead
// window (128 KiB on most disks) around each page. A page read again
// costs one read from the disk, once: a few hundred while the first
// calls warm up (BENCHMARKS.md, "Where the memory goes"). The code
// mapping is left to the kernel's defaults: it reads ahead around code
// whatever the advice.
//
// A file on tmpfs, or one written so recently that its pages are still
// dirty, keeps its pages in the cache; only the advice applies then.
func trimReadOnlyData(data []exeMapping) error {
	if len(data) == 0 {
		return nil
	}
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return err
	}
	defer func() { _ = exe.Close() }()
	for _, r := range data {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, r.start, uintptr(r.len), syscall.MADV_RANDOM); errno != 0 {
			return fmt.Errorf("madvise random: %w", errno)
		}
		if err := fadviseDontNeed(exe, r.off, r.len); err != nil {
			return err
		}
	}
	return nil
}

// fadviseDontNeed asks the kernel to drop the file's cached pages in
// [off, off+n) that no process maps.
func fadviseDontNeed(f *os.File, off, n int64) error {
	if err := unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("fadvise %s: %w", f.Name(), err)
	}
	return nil
}

// sameDevice compares a maps line's "major:minor" (hex) with a stat's
// device number.
func sameDevice(field string, dev uint64) bool {
	maj, min, ok := strings.Cut(field, ":")
	a, err1 := strconv.ParseUint(maj, 16, 32)
	b, err2 := strconv.ParseUint(min, 16, 32)
	// Linux's encoding of dev_t (see makedev(3)).
	major := (dev>>8)&0xfff | (dev>>32)&^0xfff
	minor := dev&0xff | (dev>>12)&^0xff
	return ok && err1 == nil && err2 == nil && a == major && b == minor
}
