package main

import (
	"context"
	"errors"
	"net"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	legacyteams "github.com/switchyard/switchyard/gen/legacy/teams"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/services/teams"
)

// start serves a fresh directory of the tutorial teams with adminToken and
// returns a grpc-go client connection to it.
func start(t *testing.T, adminToken string) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s, newDirectory(teams.TutorialTeams), adminToken)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func getTeam(t *testing.T, cc *grpc.ClientConn, city string) (*teamsv1.GetTeamResponse, error) {
	t.Helper()
	resp := new(teamsv1.GetTeamResponse)
	err := cc.Invoke(t.Context(), "/teams.v1.TeamsService/GetTeam", &teamsv1.GetTeamRequest{City: city}, resp)
	return resp, err
}

func putTeam(ctx context.Context, cc *grpc.ClientConn, city, nickname string) (*teamsv1.PutTeamResponse, error) {
	resp := new(teamsv1.PutTeamResponse)
	err := cc.Invoke(ctx, "/teams.v1.TeamsService/PutTeam", &teamsv1.PutTeamRequest{City: city, Nickname: nickname}, resp)
	return resp, err
}

// The peer answers GetTeam as Switchyard does: cities matched as
// teams.CityKey matches them, an unknown city NOT_FOUND with Switchyard's
// message (the load generator checks it exactly on both servers), an empty
// one INVALID_ARGUMENT.
func TestGetTeam(t *testing.T) {
	cc := start(t, "")
	for _, tc := range []struct {
		city string
		want *teamsv1.GetTeamResponse
		code codes.Code
	}{
		{"Chicago", &teamsv1.GetTeamResponse{City: "Chicago", Nickname: "Jackals"}, codes.OK},
		{"  new york ", &teamsv1.GetTeamResponse{City: "New York", Nickname: "Metros"}, codes.OK},
		{"Atlantis", nil, codes.NotFound},
		{"", nil, codes.InvalidArgument},
	} {
		got, err := getTeam(t, cc, tc.city)
		if status.Code(err) != tc.code {
			t.Errorf("%q: %v, want %v", tc.city, err, tc.code)
			continue
		}
		if tc.code == codes.OK && !proto.Equal(got, tc.want) {
			t.Errorf("%q: %v, want %v", tc.city, got, tc.want)
		}
		if tc.code == codes.NotFound {
			if want := switchyardMessage(t, tc.city); status.Convert(err).Message() != want {
				t.Errorf("%q: message %q, Switchyard's is %q", tc.city, status.Convert(err).Message(), want)
			}
		}
	}
}

// switchyardMessage is the message of Switchyard's v1 lookup for city.
func switchyardMessage(t *testing.T, city string) string {
	t.Helper()
	_, err := teams.NewHandler(teams.NewMemStore(nil), "").Lookup(t.Context(), city)
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("lookup of %q: %v", city, err)
	}
	return ce.Message()
}

// The tutorial name answers an unknown city OK with "not a member" and
// echoes the city as asked.
func TestLegacyGetTeam(t *testing.T) {
	cc := start(t, "")
	for city, want := range map[string]string{"Seattle": "Orcas", "Gotham": teams.NotAMember} {
		got := new(legacyteams.TeamResponse)
		if err := cc.Invoke(t.Context(), "/Teams/GetTeam", &legacyteams.TeamRequest{City: city}, got); err != nil {
			t.Fatalf("%s: %v", city, err)
		}
		if got.GetCity() != city || got.GetNickname() != want {
			t.Errorf("%s: %v, want nickname %q", city, got, want)
		}
	}
}

// PutTeam needs the admin token, with Switchyard's codes, and writes into
// the map that GetTeam reads; an existing city keeps its spelling.
func TestPutTeam(t *testing.T) {
	const token = "s3cret"
	cc := start(t, token)
	bearer := func(v string) context.Context {
		return metadata.AppendToOutgoingContext(t.Context(), "authorization", v)
	}
	if _, err := putTeam(t.Context(), start(t, ""), "Chicago", "Bears"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("no token configured: %v, want PermissionDenied", err)
	}
	if _, err := putTeam(t.Context(), cc, "Chicago", "Bears"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no header: %v, want Unauthenticated", err)
	}
	if _, err := putTeam(bearer("Bearer wrong"), cc, "Chicago", "Bears"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("wrong token: %v, want Unauthenticated", err)
	}
	if _, err := putTeam(bearer("Bearer "+token), cc, "Chicago", ""); status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty nickname: %v, want InvalidArgument", err)
	}
	got, err := putTeam(bearer("Bearer "+token), cc, "chicago", "Bears")
	if err != nil || !proto.Equal(got, &teamsv1.PutTeamResponse{City: "Chicago", Nickname: "Bears"}) {
		t.Fatalf("rename: %v, %v", got, err)
	}
	if team, err := getTeam(t, cc, "Chicago"); err != nil || team.GetNickname() != "Bears" {
		t.Errorf("after the rename: %v, %v", team, err)
	}
	got, err = putTeam(bearer("Bearer "+token), cc, "Atlantis", "Mermen")
	if err != nil || !got.GetCreated() {
		t.Fatalf("create: %v, %v", got, err)
	}
	if team, err := getTeam(t, cc, "atlantis"); err != nil || team.GetCity() != "Atlantis" {
		t.Errorf("after the create: %v, %v", team, err)
	}
}
