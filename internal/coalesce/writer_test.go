package coalesce_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/coalesce"
)

// slowWriter records each write and takes a while over it, as a socket
// under load does.
type slowWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
	delay  time.Duration
	err    error
	gate   chan struct{} // if set, each write waits for a value
}

func (w *slowWriter) Write(p []byte) (int, error) {
	if w.gate != nil {
		<-w.gate
	}
	time.Sleep(w.delay)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	if w.err != nil {
		return 0, w.err
	}
	return w.buf.Write(p)
}

func TestWriterKeepsEveryWriteInOrder(t *testing.T) {
	t.Parallel()
	sw := &slowWriter{delay: time.Millisecond}
	cw := coalesce.NewWriter(sw, 1<<20)
	const writers, lines = 8, 200
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				if _, err := fmt.Fprintf(cw, "%d %d\n", g, i); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := cw.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(sw.buf.String(), "\n"), "\n")
	for _, line := range got {
		var g, i int
		if _, err := fmt.Sscanf(line, "%d %d", &g, &i); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d came where %d was due", g, i, next[g])
		}
		next[g]++
	}
	if len(got) != writers*lines {
		t.Fatalf("%d lines reached the writer, want %d", len(got), writers*lines)
	}
	if sw.writes >= writers*lines/2 {
		t.Errorf("%d underlying writes for %d lines: writes were not coalesced", sw.writes, writers*lines)
	}
	cw.Close(time.Second)
}

func TestWriterReportsTheWriterError(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk full")
	sw := &slowWriter{err: boom}
	cw := coalesce.NewWriter(sw, 1<<10)
	if _, err := cw.Write([]byte("first")); err != nil {
		t.Fatalf("first write: %v (the error can only be known later)", err)
	}
	if err := cw.Flush(); !errors.Is(err, boom) {
		t.Fatalf("flush: %v, want %v", err, boom)
	}
	if _, err := cw.Write([]byte("second")); !errors.Is(err, boom) {
		t.Fatalf("write after failure: %v, want %v", err, boom)
	}
}

func TestWriterPushesBackAndDrainsOnClose(t *testing.T) {
	t.Parallel()
	sw := &slowWriter{gate: make(chan struct{})}
	cw := coalesce.NewWriter(sw, 8)
	if _, err := cw.Write([]byte("12345678")); err != nil { // taken by the writer goroutine, which waits at the gate
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if _, err := cw.Write([]byte("abcdefgh")); err != nil { // pending: now full
		t.Fatal(err)
	}
	third := make(chan error, 1)
	go func() {
		_, err := cw.Write([]byte("XYZ"))
		third <- err
	}()
	select {
	case err := <-third:
		t.Fatalf("write past the pending limit returned (%v) while the writer was stuck", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(sw.gate) // the writer proceeds
	if err := <-third; err != nil {
		t.Fatalf("third write: %v", err)
	}
	cw.Close(time.Second)
	if got := sw.buf.String(); got != "12345678abcdefghXYZ" {
		t.Fatalf("writer got %q", got)
	}
	if _, err := cw.Write([]byte("late")); !errors.Is(err, coalesce.ErrClosed) {
		t.Fatalf("write after close: %v, want %v", err, coalesce.ErrClosed)
	}
}

// A dropping writer never waits for a stuck writer: past the pending
// limit it drops writes and counts them, and what it kept still goes out
// in order once the writer moves again.
func TestDroppingWriterDropsPastTheLimitInsteadOfWaiting(t *testing.T) {
	t.Parallel()
	sw := &gatedWriter{entered: make(chan struct{}, 8), gate: make(chan struct{})}
	cw := coalesce.NewDroppingWriter(sw, 8)
	if _, err := cw.Write([]byte("12345678")); err != nil { // taken by the writer goroutine, which waits at the gate
		t.Fatal(err)
	}
	<-sw.entered
	if _, err := cw.Write([]byte("abcdefgh")); err != nil { // pending: now full
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3 {
			if n, err := cw.Write([]byte("XYZ")); n != 3 || err != nil {
				t.Errorf("dropped write: (%d, %v), want (3, nil)", n, err)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a write past the pending limit waited for the stuck writer")
	}
	if n := cw.Dropped(); n != 3 {
		t.Errorf("Dropped() = %d, want 3", n)
	}
	close(sw.gate) // the writer proceeds
	if err := cw.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	cw.Close(time.Second)
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if got := sw.buf.String(); got != "12345678abcdefghok" {
		t.Fatalf("writer got %q", got)
	}
}

// gatedWriter holds each write until the test lets it go.
type gatedWriter struct {
	entered chan struct{}
	gate    chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	w.entered <- struct{}{}
	<-w.gate
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// AfterPending runs in order with the writes: after every byte written
// before it has reached the writer, before any byte written after it.
func TestWriterRunsActionsBetweenWrites(t *testing.T) {
	t.Parallel()
	w := &gatedWriter{entered: make(chan struct{}, 8), gate: make(chan struct{})}
	cw := coalesce.NewWriter(w, 1<<20)
	defer cw.Close(time.Second)
	seen := make(chan string, 4)
	snapshot := func(label string) func() {
		return func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			seen <- label + ":" + w.buf.String()
		}
	}
	_, _ = cw.Write([]byte("a"))
	<-w.entered // "a" is being written
	_, _ = cw.Write([]byte("b"))
	cw.AfterPending(snapshot("first"))
	_, _ = cw.Write([]byte("c"))
	cw.AfterPending(snapshot("second"))
	close(w.gate)
	if err := cw.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"first:ab", "second:abc"} {
		if got := <-seen; got != want {
			t.Errorf("action saw %q, want %q", got, want)
		}
	}
	// With nothing pending an action runs at once, on the caller.
	ran := false
	cw.AfterPending(func() { ran = true })
	if !ran {
		t.Error("AfterPending with nothing pending did not run at once")
	}
}

// A backlog (writes piling up while the destination is slow) grows the
// pending buffer towards maxPending; once it is written, the writer keeps
// no buffer larger than a quarter of maxPending. Before, both buffers
// kept what a backlog grew them to for the writer's life: beneath
// net/http's server (internal/h2's BufferedListener) about half a MiB a
// connection that had once fallen behind.
func TestWriterLetsGoOfABacklog(t *testing.T) {
	t.Parallel()
	const maxPending = 64 << 10
	sw := &slowWriter{gate: make(chan struct{})}
	cw := coalesce.NewWriter(sw, maxPending)
	defer cw.Close(time.Second)
	line := bytes.Repeat([]byte("x"), 1000)
	const lines = 60 // under maxPending: no write waits
	for range lines {
		if _, err := cw.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	// The writer goroutine waits at the gate inside its first write;
	// the rest of the lines are its backlog.
	if got := cw.Retained(); got < lines*len(line)/2 {
		t.Fatalf("%d bytes written behind a stuck destination, the writer's buffers hold %d: no backlog to let go of", lines*len(line), got)
	}
	close(sw.gate)
	if err := cw.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, bound := cw.Retained(), 2*(maxPending/4); got > bound {
		t.Errorf("after the backlog was written the writer keeps %d bytes of buffers, want at most %d", got, bound)
	}
	if got := sw.buf.Len(); got != lines*len(line) {
		t.Errorf("the destination got %d bytes, want %d", got, lines*len(line))
	}
}

// A dropping writer whose drops are reported (ReportDrops) writes the
// report, how many writes it dropped, before the first write it keeps
// after them: a log read later shows where lines are missing, and how
// many.
func TestDroppingWriterReportsItsDrops(t *testing.T) {
	t.Parallel()
	sw := &gatedWriter{entered: make(chan struct{}, 8), gate: make(chan struct{})}
	cw := coalesce.NewDroppingWriter(sw, 8)
	cw.ReportDrops(func(n int64) []byte { return fmt.Appendf(nil, "[%d dropped]", n) })
	for _, w := range []string{"12345678", "abcdefgh", "XYZ", "XYZ"} {
		if _, err := cw.Write([]byte(w)); err != nil {
			t.Fatal(err)
		}
		if w == "12345678" {
			<-sw.entered // taken by the writer goroutine, which waits at the gate
		}
	}
	close(sw.gate)
	if err := cw.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.Write([]byte("ok")); err != nil { // the report goes first, past the limit
		t.Fatal(err)
	}
	if _, err := cw.Write([]byte("!")); err != nil { // dropped while the report is pending
		t.Fatal(err)
	}
	if err := cw.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.Write([]byte("?")); err != nil {
		t.Fatal(err)
	}
	cw.Close(time.Second)
	sw.mu.Lock()
	defer sw.mu.Unlock()
	want := map[int64]string{2: "12345678abcdefgh[2 dropped]ok!?", 3: "12345678abcdefgh[2 dropped]ok[1 dropped]?"}
	if got := sw.buf.String(); got != want[cw.Dropped()] {
		t.Fatalf("writer got %q with Dropped() %d, want %q", got, cw.Dropped(), want[cw.Dropped()])
	}
}

// Close reports the writes dropped since the last one kept.
func TestDroppingWriterReportsItsDropsOnClose(t *testing.T) {
	t.Parallel()
	sw := &gatedWriter{entered: make(chan struct{}, 8), gate: make(chan struct{})}
	cw := coalesce.NewDroppingWriter(sw, 8)
	cw.ReportDrops(func(n int64) []byte { return fmt.Appendf(nil, "[%d dropped]", n) })
	if _, err := cw.Write([]byte("12345678")); err != nil {
		t.Fatal(err)
	}
	<-sw.entered
	for _, w := range []string{"abcdefgh", "XYZ"} {
		if _, err := cw.Write([]byte(w)); err != nil {
			t.Fatal(err)
		}
	}
	close(sw.gate)
	cw.Close(time.Second)
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if got, want := sw.buf.String(), "12345678abcdefgh[1 dropped]"; got != want {
		t.Fatalf("writer got %q, want %q", got, want)
	}
}
