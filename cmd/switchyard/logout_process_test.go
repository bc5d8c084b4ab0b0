package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/testserver"
)

// A log destination nobody reads (a pipe whose reader hung, a stalled log
// shipper) must not stall the calls, which log as they end, nor the
// drain, which logs as it begins: once the log writer's buffer is full,
// lines are dropped and counted, and SIGTERM still stops the process.
func TestUnreadLogOutputDropsLinesNotCalls(t *testing.T) {
	cmd := exec.Command(switchyardBinary(t), "-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0",
		"-log-format", "json", "-data-dir", t.TempDir(), "-shutdown-grace", "1s")
	cmd.Env = hermeticEnv(t)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		go func() { _, _ = io.Copy(io.Discard, stderr) }()
		<-exited
	})
	// Read until the server serves, then never again.
	var addr, adminAddr string
	sc := bufio.NewScanner(stderr)
	for addr == "" && sc.Scan() {
		var rec struct {
			Msg       string `json:"msg"`
			Addr      string `json:"addr"`
			AdminAddr string `json:"admin_addr"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		switch rec.Msg {
		case "admin listener serving":
			adminAddr = rec.AdminAddr
		case "switchyard serving":
			addr = rec.Addr
		}
	}
	go func() { exited <- cmd.Wait() }()
	if addr == "" || adminAddr == "" {
		t.Fatalf("no serving lines (addr %q, admin_addr %q)", addr, adminAddr)
	}

	// Each call's line is about 200 bytes: 10 000 of them are more than
	// the pipe and the writer's 1 MiB buffer hold.
	client := teamsv1connect.NewTeamsServiceClient(testserver.NewH2CClient(), "http://"+addr, connect.WithGRPC())
	const workers, calls = 8, 10000
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range calls / workers {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := client.GetTeam(ctx, connect.NewRequest(&teamsv1.GetTeamRequest{City: "Nowhere"}))
				cancel()
				if connect.CodeOf(err) != connect.CodeNotFound {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a call with its log line unwritable: %v, want not_found within 5 s", err)
	}

	droppedLines := func() int {
		t.Helper()
		res, err := http.Get("http://" + adminAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		m := regexp.MustCompile(`(?m)^switchyard_log_lines_dropped_total (\d+)$`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("no switchyard_log_lines_dropped_total in /metrics")
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	if n := droppedLines(); n == 0 {
		t.Errorf("switchyard_log_lines_dropped_total 0 after %d calls whose lines nobody read", calls)
	}

	// Read again: the lines kept are whole, and with those dropped they
	// are every call's, once the backlog is read.
	var callLines atomic.Int64
	var broken, reported int
	readAll := make(chan struct{})
	go func() {
		defer close(readAll)
		for sc.Scan() {
			var rec struct {
				Msg       string `json:"msg"`
				Procedure string `json:"procedure"`
				Dropped   int    `json:"dropped"`
			}
			switch {
			case json.Unmarshal(sc.Bytes(), &rec) != nil:
				broken++
			case rec.Msg == "log lines dropped: standard error did not take them":
				reported += rec.Dropped
			case rec.Msg == "rpc" && strings.HasSuffix(rec.Procedure, "/GetTeam"):
				callLines.Add(1)
			}
		}
	}()
	var dropped int
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if dropped = droppedLines(); int(callLines.Load())+dropped == calls {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read again: %d call lines, with %d dropped; want %d", callLines.Load(), dropped, calls)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Errorf("exit status %d after SIGTERM, want 0", ee.ExitCode())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("still running 20 s after SIGTERM")
	}
	<-readAll
	if broken != 0 {
		t.Errorf("read again: %d lines not JSON, want every line whole", broken)
	}
	if reported != dropped {
		t.Errorf("the log's 'log lines dropped' lines count %d, want the %d dropped", reported, dropped)
	}
}
