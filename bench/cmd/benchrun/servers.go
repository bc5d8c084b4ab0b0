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
)

type server struct {
	name string // serverKinds key
	kind serverKind
	addr string
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
	cmd, err := command(l.server, l.cores, filepath.Join(bin, k.bin), k.args(addr, f)...)
	if err != nil {
		return nil, err
	}
	cmd.Env = append(cmd.Env, k.env...)
	// Switchyard writes its one line per call here: the write is paid,
	// the storage is not. Only its team cache's counters are kept.
	s := &server{name: name, kind: k, addr: addr, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.Discard, nil
	if k.bin == "switchyard" {
		s.cache = &cacheLine{}
		cmd.Stderr = s.cache
	}
	if err := cmd.Start(); err != nil {
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
}

func freePort() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
