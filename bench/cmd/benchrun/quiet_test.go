package main

import (
	"fmt"
	"io"
	"os/exec"
	"testing"
	"time"
)

// started runs name with args until the test ends.
func started(t *testing.T, name string, args ...string) (*exec.Cmd, io.Writer) {
	t.Helper()
	cmd := exec.Command(name, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, in
}

// spinner is a process that keeps its CPU busy for as many milliseconds
// as each line on its stdin says — an idle server's collector cycle, at
// will. It forks nothing, so its own CPU time is all of it.
func spinner(t *testing.T) (*exec.Cmd, func(ms int)) {
	t.Helper()
	cmd, in := started(t, "bash", "-c",
		`while read -r ms; do end=$(( ${EPOCHREALTIME/./} / 1000 + ms )); while (( ${EPOCHREALTIME/./} / 1000 < end )); do :; done; done`)
	return cmd, func(ms int) {
		if _, err := fmt.Fprintln(in, ms); err != nil {
			t.Fatal(err)
		}
	}
}

// A run begins once the other servers are quiet; a run during which they
// were not is made again, and of runs disturbed every time the least
// disturbed is kept. The server under load is not one of the others.
func TestQuietRun(t *testing.T) {
	target, _ := spinner(t)
	idle, _ := started(t, "sleep", "60")
	busy, spin := spinner(t)
	servers := map[string]*server{"switchyard": {cmd: target}, "idle": {cmd: idle}, "busy": {cmd: busy}}

	// spinning is a run during which the others spin for the given
	// milliseconds (0: not at all); it returns its number in Calls.
	// Every making records its seed in seen.
	seed, seen := 0, map[int]int{}
	spinning := func(ms ...int) (func(int) (result, error), *int) {
		n := 0
		return func(s int) (result, error) {
			seen[s]++
			if ms[n] > 0 {
				spin(ms[n])
			}
			time.Sleep(time.Duration(ms[n])*time.Millisecond + 300*time.Millisecond)
			n++
			return result{Calls: n}, nil
		}, &n
	}

	run, made := spinning(0)
	res, err := quietRun(servers, "switchyard", 1, &seed, run)
	if err != nil || *made != 1 || res.tries != 1 || res.others > othersQuiet {
		t.Errorf("quiet others: %d runs, kept %+v, %v; want 1 run, undisturbed", *made, res, err)
	}

	run, made = spinning(600, 0)
	res, err = quietRun(servers, "switchyard", 1, &seed, run)
	if err != nil || *made != 2 || res.Calls != 2 || res.tries != 2 || res.others > othersQuiet {
		t.Errorf("others busy in the first run: %d runs, kept %+v, %v; want the second of 2, undisturbed", *made, res, err)
	}

	run, made = spinning(900, 300, 600)
	res, err = quietRun(servers, "switchyard", 1, &seed, run)
	if err != nil || *made != runTries || res.Calls != 2 || res.tries != runTries || res.others <= othersQuiet {
		t.Errorf("others busy in every run: %d runs, kept %+v, %v; want the second (least disturbed) of %d, counted disturbed", *made, res, err, runTries)
	}

	// The server under load may be as busy as it likes.
	target2, spinTarget := spinner(t)
	servers["switchyard"] = &server{cmd: target2}
	res, err = quietRun(servers, "switchyard", 1, &seed, func(s int) (result, error) {
		seen[s]++
		spinTarget(500)
		time.Sleep(800 * time.Millisecond)
		return result{Calls: 1}, nil
	})
	if err != nil || res.tries != 1 || res.others > othersQuiet {
		t.Errorf("only the server under load busy: kept %+v, %v; want 1 undisturbed run", res, err)
	}

	// A run made again must not repeat a seed: the route_guide example
	// would answer its RouteChat notes with the earlier run's too.
	for s, n := range seen {
		if n != 1 {
			t.Errorf("seed %d given to %d makings, want 1", s, n)
		}
	}
	if len(seen) != 1+2+runTries+1 {
		t.Errorf("%d distinct seeds over %d makings: %v", len(seen), 1+2+runTries+1, seen)
	}
}

// waitQuiet waits out the others' busy spell, and gives up at its limit.
func TestWaitQuiet(t *testing.T) {
	busy, spin := spinner(t)
	pids := []int{busy.Process.Pid}
	spin(1200)
	waited, ok := waitQuiet(pids, 1, 10*time.Second)
	if !ok || waited < 900*time.Millisecond {
		t.Errorf("waited %s (quiet %v), want the spell's end (about 1.2 s), quiet", waited, ok)
	}
	spin(3000)
	waited, ok = waitQuiet(pids, 1, 600*time.Millisecond)
	if ok || waited > 2500*time.Millisecond {
		t.Errorf("waited %s (quiet %v) for a 3 s spell with a 0.6 s limit, want to give up at the limit", waited, ok)
	}
}
