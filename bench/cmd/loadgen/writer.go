package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/services/teams"
)

// WriterResult is what the writer process reports: its PutTeam calls,
// apart from the reads.
type WriterResult struct {
	Writes    int     `json:"writes"`     // acknowledged inside the measured window
	WritesAll int     `json:"writes_all"` // acknowledged in total
	Target    int     `json:"target"`     // writes asked for by the end of the run
	Seconds   float64 `json:"seconds"`    // measured window, as the writer saw it
	P50       float64 `json:"p50_ms"`
	P99       float64 `json:"p99_ms"`
	Errors    int     `json:"errors"`
	FirstErr  string  `json:"first_error"`
	CPU       float64 `json:"cpu_us_per_write"` // the writer process's user+system time per write
}

// The pacing protocol on the writer's stdin, one command a line:
//
//	target N   issue writes until N have been issued in all
//	start      the measured window begins
//	stop       the measured window ends
//
// At end of input the writer lets its calls in flight finish, prints its
// WriterResult as JSON and exits. Its first write's outcome ("ok", or the
// error) goes to a pipe of its own as soon as it is known: the reader
// asks for that write ("target 1") and waits for it before it reads.

// writerInFlight bounds the writer's concurrent PutTeam calls, so a slow
// store (SQLite commits each write to disk) holds writes back rather
// than piling them up.
const writerInFlight = 8

// writerProc is the reader's handle on its writer process.
type writerProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout bytes.Buffer
	first  *os.File // the first write's outcome
}

// startWriter starts this binary as the writer, against the same server
// with the same transport.
func startWriter(o options, stderr io.Writer) (*writerProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-writer", "-addr", o.addr, "-admin-token-file", o.tokenFile, "-first-write-fd", "3"}
	if o.tls {
		args = append(args, "-tls")
		if o.caFile != "" {
			args = append(args, "-cacert", o.caFile)
		}
		if o.insecure {
			args = append(args, "-insecure")
		}
	}
	w := &writerProc{cmd: exec.Command(exe, args...)}
	w.cmd.Stdout, w.cmd.Stderr = &w.stdout, stderr
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	first, firstW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	w.first = first
	w.cmd.ExtraFiles = []*os.File{firstW} // fd 3
	err = w.cmd.Start()
	_ = firstW.Close()
	if err != nil {
		_ = first.Close()
		return nil, fmt.Errorf("start the writer process: %w", err)
	}
	return w, nil
}

// firstWrite asks for one write and waits until it is acknowledged.
func (w *writerProc) firstWrite() error {
	defer func() { _ = w.first.Close() }()
	fmt.Fprintln(w.stdin, "target 1")
	line, err := bufio.NewReader(w.first).ReadString('\n')
	switch {
	case err != nil:
		return fmt.Errorf("the writer process ended before its first write: %v", err)
	case line != "ok\n":
		return fmt.Errorf("the writer's first write: %s", strings.TrimSpace(line))
	}
	return nil
}

// pace tells the writer, every few milliseconds, how many writes the
// reads completed so far call for, and when the measured window opens
// and closes.
func (w *writerProc) pace(reads func() int64, share float64, win window, stop <-chan struct{}) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	last, started := -1, false
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			if !started && !now.Before(win.from) {
				started = true
				fmt.Fprintln(w.stdin, "start")
			}
			// One more: the first, written before the reads began.
			if n := 1 + int(float64(reads())*share); n != last {
				last = n
				fmt.Fprintf(w.stdin, "target %d\n", n)
			}
			if !now.Before(win.to) {
				fmt.Fprintln(w.stdin, "stop")
				return
			}
		}
	}
}

// finish ends the writer's input and collects its result.
func (w *writerProc) finish() (WriterResult, error) {
	fmt.Fprintln(w.stdin, "stop")
	_ = w.stdin.Close()
	err := w.cmd.Wait()
	var r WriterResult
	if jerr := json.Unmarshal(w.stdout.Bytes(), &r); jerr != nil {
		return r, fmt.Errorf("writer process: %v (output %q)", errors.Join(err, jerr), w.stdout.String())
	}
	if r.Errors > 0 {
		return r, fmt.Errorf("writer: %d failed PutTeam checks, first: %s", r.Errors, r.FirstErr)
	}
	if err != nil {
		return r, fmt.Errorf("writer process: %w", err)
	}
	return r, nil
}

// put is one PutTeam the writer makes and the one answer it accepts.
type put struct {
	body, want []byte
}

// writes are the writer's calls in order: write k renames the team of
// city k mod 10 to the next of its Nicknames (its own every third pass).
func writes() []put {
	var out []put
	for pass := range 3 {
		for _, t := range teams.TutorialTeams {
			nick := Nicknames(t)[(pass+1)%3]
			out = append(out, put{
				body: frame(nil, mustMarshal(&teamsv1.PutTeamRequest{City: t.City, Nickname: nick})),
				want: frame(nil, mustMarshal(&teamsv1.PutTeamResponse{City: t.City, Nickname: nick, Created: false})),
			})
		}
	}
	return out
}

// runWriter is the writer process: PutTeam calls paced by stdin, each
// checked (HTTP status, content type, grpc-status, exact bytes).
func runWriter(d dialer, tokenFile string, stdin io.Reader, stdout, stderr, first io.Writer) int {
	if d.addr == "" || tokenFile == "" {
		fmt.Fprintln(stderr, "loadgen -writer: need -addr and -admin-token-file")
		return 2
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen -writer:", err)
		return 2
	}
	tr := &http2.Transport{
		AllowHTTP:       d.tls == nil,
		TLSClientConfig: d.tls,
		DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
			return d.dial(ctx)
		},
	}
	defer tr.CloseIdleConnections()
	url := d.scheme() + "://" + d.addr + "/teams.v1.TeamsService/PutTeam"
	auth := "Bearer " + strings.TrimSpace(string(token))
	plan := writes()

	var (
		mu                 sync.Mutex
		cond               = sync.NewCond(&mu)
		target, issued     int
		closed, measuring  bool
		windowStart        time.Time
		res                WriterResult
		lat                histogram
		wg                 sync.WaitGroup
		cpu0               = cpuTime()
		windowEnd          time.Time
		inWindowCompletion int
	)
	fail := func(err error) {
		res.Errors++
		if res.FirstErr == "" {
			res.FirstErr = err.Error()
		}
	}
	for range writerInFlight {
		wg.Go(func() {
			for {
				mu.Lock()
				for issued >= target && !closed {
					cond.Wait()
				}
				if closed {
					mu.Unlock()
					return
				}
				k := issued
				issued++
				mu.Unlock()

				start := time.Now()
				err := putTeam(tr, url, auth, plan[k%len(plan)])
				took := time.Since(start)

				mu.Lock()
				if k == 0 && first != nil {
					outcome := "ok"
					if err != nil {
						outcome = fmt.Sprintf("PutTeam 0: %v", err)
					}
					fmt.Fprintln(first, outcome)
				}
				if err != nil {
					fail(fmt.Errorf("PutTeam %d: %w", k, err))
				} else {
					res.WritesAll++
					if measuring {
						inWindowCompletion++
						lat.record(took)
					}
				}
				mu.Unlock()
			}
		})
	}
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		mu.Lock()
		switch cmd {
		case "target":
			if n, err := strconv.Atoi(arg); err == nil && n > target {
				target = n
				cond.Broadcast()
			}
		case "start":
			if windowStart.IsZero() {
				measuring, windowStart = true, time.Now()
			}
		case "stop":
			if measuring {
				measuring, windowEnd = false, time.Now()
			}
		}
		mu.Unlock()
	}
	mu.Lock()
	closed = true
	cond.Broadcast()
	mu.Unlock()
	wg.Wait()

	res.Target, res.Writes = target, inWindowCompletion
	if !windowStart.IsZero() && !windowEnd.IsZero() {
		res.Seconds = windowEnd.Sub(windowStart).Seconds()
	}
	res.P50, res.P99 = lat.percentile(0.5), lat.percentile(0.99)
	if n := res.WritesAll + res.Errors; n > 0 {
		res.CPU = float64(cpuTime()-cpu0) / float64(time.Microsecond) / float64(n)
	}
	_ = json.NewEncoder(stdout).Encode(res)
	if res.Errors > 0 {
		return 1
	}
	return 0
}

// putTeam makes one PutTeam call and checks its whole answer.
func putTeam(tr *http2.Transport, url, auth string, p put) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(p.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set("Authorization", auth)
	req.Header.Set("User-Agent", "switchyard-loadgen-writer")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/grpc" && !strings.HasPrefix(ct, "application/grpc+") {
		return fmt.Errorf("content-type %q", ct)
	}
	// A trailers-only answer carries its status in the headers.
	code, msg := resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
	if code == "" {
		code, msg = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	}
	if err := statusOK(&response{grpcStatus: code, grpcMessage: percentDecode(msg)}); err != nil {
		return err
	}
	if !bytes.Equal(body, p.want) {
		return fmt.Errorf("response body %q, want %q", trunc(body), trunc(p.want))
	}
	return nil
}
