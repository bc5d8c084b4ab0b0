package server_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/services/teams"
)

// stuckStore is a team store whose reads hang until their context ends,
// like a database under a lock; it reports the deadline each read saw.
type stuckStore struct {
	teams.Store
	deadlines chan time.Duration
}

func (s stuckStore) wait(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		s.deadlines <- -1
	} else {
		s.deadlines <- time.Until(deadline)
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s stuckStore) Get(ctx context.Context, _ string) (teams.Team, error) {
	return teams.Team{}, s.wait(ctx)
}

func (s stuckStore) List(ctx context.Context, _ teams.ListOptions) ([]teams.Team, bool, error) {
	return nil, false, s.wait(ctx)
}

// The client's deadline (grpc-timeout, connect-timeout-ms) and, without
// one, the server's unary deadline reach the store's queries, and a call
// stuck in the store ends on time with DEADLINE_EXCEEDED.
func TestDeadlinesReachTheStore(t *testing.T) {
	t.Parallel()
	store := stuckStore{Store: teams.NewMemStore(teams.TutorialTeams), deadlines: make(chan time.Duration, 64)}
	srv := testserver.Start(t, server.Config{Teams: store, UnaryTimeout: 700 * time.Millisecond})
	seen := func(t *testing.T, limit time.Duration) {
		t.Helper()
		select {
		case d := <-store.deadlines:
			if d < 0 || d > limit {
				t.Errorf("the store saw a deadline %v away, want at most %v", d, limit)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the call never reached the store")
		}
	}
	for _, p := range testserver.Protocols() {
		t.Run(p.Name, func(t *testing.T) {
			c := newClients(srv, p)
			for _, tc := range []struct {
				name    string
				timeout time.Duration // client deadline; 0 = none
				limit   time.Duration
			}{{"client deadline", 200 * time.Millisecond, 200 * time.Millisecond}, {"server deadline", 0, 700 * time.Millisecond}} {
				callCtx, cancel := t.Context(), context.CancelFunc(func() {})
				if tc.timeout > 0 {
					callCtx, cancel = context.WithTimeout(t.Context(), tc.timeout)
				}
				start := time.Now()
				_, err := c.teams.GetTeam(callCtx, connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"}))
				cancel()
				wantCode(t, err, connect.CodeDeadlineExceeded)
				seen(t, tc.limit)
				if d := time.Since(start); d > tc.limit+3*time.Second {
					t.Errorf("%s: GetTeam took %v", tc.name, d)
				}
			}
			// A stream has no server deadline, but the client's reaches the store.
			callCtx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			stream, err := c.teams.ListTeams(callCtx, connect.NewRequest(&teamsv1.ListTeamsRequest{}))
			if err == nil {
				for stream.Receive() {
				}
				err = stream.Err()
			}
			wantCode(t, err, connect.CodeDeadlineExceeded)
			seen(t, 200*time.Millisecond)
		})
	}
}
