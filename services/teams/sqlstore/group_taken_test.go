package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchyard/switchyard/services/teams"
)

// A write whose bound ends while it waits to join a group, behind one
// the database does not answer, was never sent: it is unavailable, and
// not said to have maybe been made, as the write that was sent is.
func TestWriteNotTakenWasNotMade(t *testing.T) {
	release := make(chan struct{})
	g := startGroupCommit(&groupCommit{remote: true, shared: func(ctx context.Context, live []*putReq) ([]putResult, error) {
		<-release // a database that does not answer
		return nil, errors.New("no answer")
	}})
	t.Cleanup(func() { close(release); g.close() })
	s := &Store{group: g, timeout: 100 * time.Millisecond}
	put := func() error {
		wctx, cancel := s.boundContext(context.Background())
		defer cancel()
		_, _, err := g.put(wctx, "a", "A", "Nick A")
		return s.writeErr(context.Background(), wctx, err)
	}
	first := make(chan error, 1)
	go func() { first <- put() }()
	deadline := time.Now().Add(10 * time.Second)
	for g.writes.Load() == 0 && time.Now().Before(deadline) { // the first is in its group
		time.Sleep(time.Millisecond)
	}
	second := put()
	if !errors.Is(second, teams.ErrUnavailable) || errors.Is(second, teams.ErrMaybeMade) {
		t.Errorf("a write that waited behind the group until its bound: %v; want unavailable, not made", second)
	}
	if err := <-first; !errors.Is(err, teams.ErrMaybeMade) {
		t.Errorf("the write the database did not answer: %v; want may have been made", err)
	}
}
