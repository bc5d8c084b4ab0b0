package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type server struct {
	name string // serverKinds key
	kind serverKind
	addr string
	exe  string // its own copy of its executable (ownCopy)
	cmd  *exec.Cmd
	done chan struct{} // closed when the process exits
	// cache keeps a Switchyard server's "team cache" log line; nil for
	// the peers.
	cache *cacheLine
}

// command runs path pinned to cpus (through benchrun's own -pin mode) with
// GOMAXPROCS set to procs; no cpus means unpinned.
func command(cpus []int, procs int, path string, args ...string) (*exec.Cmd, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if len(cpus) == 0 {
		cmd = exec.Command(path, args...)
	} else {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(self, append([]string{pinFlag, cpuList(cpus), "--", path}, args...)...)
	}
	cmd.Env = os.Environ()
	if procs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(procs))
	}
	// Should benchrun die without stopping it, the child goes too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

func startServer(name string, bin string, l layout, f files) (*server, error) {
	k := serverKinds[name]
	port := freePort()
	addr := "127.0.0.1:" + port
	if k.addr != nil {
		addr = k.addr(port)
	}
	exe, err := ownCopy(filepath.Join(bin, k.bin), f.dir)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd, err := command(l.server, l.cores, exe, k.args(addr, f)...)
	if err != nil {
		_ = os.RemoveAll(filepath.Dir(exe))
		return nil, err
	}
	cmd.Env = append(cmd.Env, k.env...)
	// Switchyard writes its one line per call here: the write is paid,
	// the storage is not. Only its team cache's counters are kept.
	s := &server{name: name, kind: k, addr: addr, exe: exe, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.Discard, nil
	if k.bin == "switchyard" {
		s.cache = &cacheLine{}
		cmd.Stderr = s.cache
	}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(filepath.Dir(exe))
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); close(s.done) }()
	// Generous: a loaded machine may take seconds to start a server (its
	// SQLite migration fsyncs); a server that exits says so at once.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		select {
		case <-s.done:
			return nil, fmt.Errorf("%s (%s) exited at start: %v", name, k.bin, cmd.ProcessState)
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return s, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop(s)
	return nil, fmt.Errorf("%s did not listen on %s", name, addr)
}

func stop(s *server) {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	_ = os.RemoveAll(filepath.Dir(s.exe))
}

// ownCopy copies the executable at path into a new directory under dir,
// synced, and returns the copy's path: each server process runs from a
// file of its own. Several servers of one executable (Switchyard's rows
// run on up to eight) share its page cache, and the kernel maps a
// process every cached page up to 64 KiB around each page it faults:
// what the other servers' work and start-up brought into the cache
// showed in the GetTeam server's RSS (20.6 MiB in a full run against
// 19.0 with its row alone, BENCHMARKS.md). Synced, the copy's pages are
// clean, so Switchyard's start-up can drop its read-only data from the
// cache as it does for an installed binary (a dirty page stays).
func ownCopy(path, dir string) (string, error) {
	d, err := os.MkdirTemp(dir, "exe-")
	if err != nil {
		return "", err
	}
	exe := filepath.Join(d, filepath.Base(path))
	if err := copySynced(path, exe); err != nil {
		_ = os.RemoveAll(d)
		return "", err
	}
	return exe, nil
}

func copySynced(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	// Out of the page cache: the copy's pages, written here, would sit
	// in the cache in large folios (64 KiB on this kernel) where the
	// linker's output and a binary read from disk have pages of 4 KiB;
	// in 12 alternating bench/ab.sh runs the server's median from such
	// a copy was a tenth lower. Dropped, the server reads its copy from
	// the disk, as a freshly installed binary is read.
	if err := unix.Fadvise(int(dst.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
