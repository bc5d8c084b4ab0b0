package teams_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"

	legacyteams "github.com/switchyard/switchyard/gen/legacy/teams"
	"github.com/switchyard/switchyard/gen/legacy/teams/teamsconnect"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/services/teams"
)

// TeamsService through the whole server, in every protocol. Writes and
// their authorization are in teams_test.go, the stores' behaviour in
// storetest (run by memstore_ext_test.go and sqlstore), deadlines reaching
// the store in internal/server/deadline_ext_test.go.

func TestGetTeam(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	testserver.ForEachProtocol(t, func(t *testing.T, p testserver.Protocol) {
		c := teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL, p.Opts...)
		team, err := c.GetTeam(testserver.CallContext(t), connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"}))
		if err != nil || team.Msg.GetCity() != "Chicago" || team.Msg.GetNickname() != "Jackals" {
			t.Errorf("GetTeam(Chicago) = %v, %v; want Chicago Jackals", team, err)
		}
		team, err = c.GetTeam(testserver.CallContext(t), connect.NewRequest(&teamsv1.GetTeamRequest{City: "  new york "}))
		if err != nil || team.Msg.GetCity() != "New York" || team.Msg.GetNickname() != "Metros" {
			t.Errorf("GetTeam(new york) = %v, %v; want New York Metros", team, err)
		}
		_, err = c.GetTeam(testserver.CallContext(t), connect.NewRequest(&teamsv1.GetTeamRequest{City: "Miami"}))
		testserver.WantCode(t, err, connect.CodeNotFound)
		_, err = c.GetTeam(testserver.CallContext(t), connect.NewRequest(&teamsv1.GetTeamRequest{City: " "}))
		testserver.WantCode(t, err, connect.CodeInvalidArgument)
	})
}

func TestListTeams(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	testserver.ForEachProtocol(t, func(t *testing.T, p testserver.Protocol) {
		c := teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL, p.Opts...)
		stream, err := c.ListTeams(testserver.CallContext(t), connect.NewRequest(&teamsv1.ListTeamsRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		var cities []string
		for stream.Receive() {
			cities = append(cities, stream.Msg().GetCity())
		}
		if err := stream.Err(); err != nil || len(cities) != 10 || !slices.IsSorted(cities) {
			t.Errorf("ListTeams = %q, %v; want the 10 tutorial cities in order", cities, err)
		}
	})
}

func TestListTeamsPaging(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	testserver.ForEachProtocol(t, func(t *testing.T, p testserver.Protocol) {
		c := teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL, p.Opts...)
		var cities []string
		token := ""
		for page := 0; page < 10; page++ {
			stream, err := c.ListTeams(testserver.CallContext(t), connect.NewRequest(&teamsv1.ListTeamsRequest{PageSize: 4, PageToken: token}))
			if err != nil {
				t.Fatal(err)
			}
			token = ""
			n := 0
			for stream.Receive() {
				n++
				cities = append(cities, stream.Msg().GetCity())
				token = stream.Msg().GetNextPageToken()
			}
			if err := stream.Err(); err != nil || n > 4 {
				t.Fatalf("page %d: %d teams, %v", page, n, err)
			}
			if token == "" {
				break
			}
		}
		want := []string{"Arizona", "Boston", "Chicago", "Detroit", "Los Angeles", "Minneapolis", "New York", "Philadelphia", "San Francisco", "Seattle"}
		if !slices.Equal(cities, want) {
			t.Errorf("paged ListTeams = %q, want %q", cities, want)
		}

		stream, err := c.ListTeams(testserver.CallContext(t), connect.NewRequest(&teamsv1.ListTeamsRequest{CityPrefix: "s"}))
		if err != nil {
			t.Fatal(err)
		}
		cities = nil
		for stream.Receive() {
			cities = append(cities, stream.Msg().GetCity())
		}
		if want := []string{"San Francisco", "Seattle"}; stream.Err() != nil || !slices.Equal(cities, want) {
			t.Errorf("ListTeams(prefix s) = %q, %v; want %q", cities, stream.Err(), want)
		}

		// Bytes no city key holds, in a token or a prefix, are the
		// caller's mistake on every store (PostgreSQL refuses a NUL).
		forged := func(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }
		for _, bad := range []*teamsv1.ListTeamsRequest{
			{PageSize: -1}, {PageToken: "not base64!"},
			{PageToken: forged("\xff")}, {PageToken: forged("chi\x00")}, {CityPrefix: "chi\x00"}, {CityPrefix: "\n"},
		} {
			stream, err := c.ListTeams(testserver.CallContext(t), connect.NewRequest(bad))
			if err == nil {
				for stream.Receive() {
				}
				err = stream.Err()
			}
			testserver.WantCode(t, err, connect.CodeInvalidArgument)
		}
	})
}

// The tutorial's /Teams/GetTeam: an unknown city is a team "not a member",
// not an error; other input is checked as in v1.
func TestLegacyGetTeam(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	testserver.ForEachProtocol(t, func(t *testing.T, p testserver.Protocol) {
		c := teamsconnect.NewTeamsClient(srv.HTTPClient, srv.URL, p.Opts...)
		for city, want := range map[string]string{"Chicago": "Jackals", "Philadelphia": "Foxes", "Miami": "not a member", " boston ": "Revolutionaries"} {
			res, err := c.GetTeam(testserver.CallContext(t), connect.NewRequest(&legacyteams.TeamRequest{City: city}))
			if err != nil || res.Msg.GetCity() != city || res.Msg.GetNickname() != want {
				t.Errorf("/Teams/GetTeam(%q) = %v, %v; want %q %q", city, res, err, city, want)
			}
		}
		_, err := c.GetTeam(testserver.CallContext(t), connect.NewRequest(&legacyteams.TeamRequest{City: " "}))
		testserver.WantCode(t, err, connect.CodeInvalidArgument)
	})
}

// listLimits is a Store that notes the largest page List was asked for.
type listLimits struct {
	teams.Store
	largest atomic.Int64
	calls   atomic.Int64
}

func (s *listLimits) List(ctx context.Context, opts teams.ListOptions) ([]teams.Team, bool, error) {
	s.calls.Add(1)
	for {
		old := s.largest.Load()
		if int64(opts.Limit) <= old || s.largest.CompareAndSwap(old, int64(opts.Limit)) {
			break
		}
	}
	return s.Store.List(ctx, opts)
}

// ListTeams of every team (page_size 0) streams them all, in order, but
// reads the store a page at a time: a call holds one page, not the whole
// directory, however large it is.
func TestListTeamsEveryTeamReadsByPages(t *testing.T) {
	t.Parallel()
	seed := slices.Clone(teams.TutorialTeams)
	for i := range 2*teams.MaxPageSize + 500 {
		seed = append(seed, teams.Team{City: fmt.Sprintf("Town %04d", i), Nickname: "Locals"})
	}
	store := &listLimits{Store: teams.NewMemStore(seed)}
	srv := testserver.Start(t, server.Config{Teams: store})
	c := teamsv1connect.NewTeamsServiceClient(srv.HTTPClient, srv.URL)
	stream, err := c.ListTeams(testserver.CallContext(t), connect.NewRequest(&teamsv1.ListTeamsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var cities []string
	for stream.Receive() {
		if stream.Msg().GetNextPageToken() != "" {
			t.Fatalf("a listing of every team carries a page token at %q", stream.Msg().GetCity())
		}
		cities = append(cities, stream.Msg().GetCity())
	}
	if err := stream.Err(); err != nil || len(cities) != len(seed) || !slices.IsSortedFunc(cities, func(a, b string) int { return strings.Compare(teams.CityKey(a), teams.CityKey(b)) }) {
		t.Fatalf("ListTeams = %d teams in order %v, %v; want the %d teams in key order", len(cities), slices.IsSorted(cities), err, len(seed))
	}
	if l, n := store.largest.Load(), store.calls.Load(); l <= 0 || l > teams.MaxPageSize || n < 3 {
		t.Errorf("the store was read %d times, the largest page %d; want pages of at most %d", n, l, teams.MaxPageSize)
	}
}
