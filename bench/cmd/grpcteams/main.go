// Command grpcteams is the peer of the benchmark's product rows: the Teams
// service as a user choosing plain grpc-go would write it from the
// tutorial — the ten teams in a map in memory, read under a read lock,
// PutTeam writing into it under the lock, behind the same admin-token
// check as Switchyard's. It serves teams.v1 GetTeam and PutTeam and the
// tutorial's /Teams/GetTeam with Switchyard's answers (cities compared as
// teams.CityKey does; an unknown city is NOT_FOUND on v1 and "not a
// member" on the tutorial name). Its service descriptors are written by
// hand over the gen/ message types: Switchyard generates no grpc-go stubs.
package main

import (
	"context"
	"crypto/subtle"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/bench/internal/grpcpeer"
	legacyteams "github.com/switchyard/switchyard/gen/legacy/teams"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/services/teams"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address; the bound address is printed on stdout")
	tokenFile := flag.String("admin-token-file", "", "file holding the bearer token that enables PutTeam (as switchyard's flag)")
	cert := flag.String("tls-cert", "", "PEM certificate file: serve TLS (ALPN h2) instead of cleartext; needs -tls-key")
	key := flag.String("tls-key", "", "PEM private key file of -tls-cert")
	flag.Parse()
	if err := run(*addr, *tokenFile, *cert, *key); err != nil {
		fmt.Fprintln(os.Stderr, "grpcteams:", err)
		os.Exit(1)
	}
}

func run(addr, tokenFile, cert, key string) error {
	token, err := grpcpeer.Token(tokenFile)
	if err != nil {
		return err
	}
	d := newDirectory(teams.TutorialTeams)
	return grpcpeer.Serve(addr, cert, key, func(s *grpc.Server) { register(s, d, token) })
}

// directory is the teams in a map, by teams.CityKey.
type directory struct {
	mu    sync.RWMutex
	teams map[string]teams.Team
}

func newDirectory(seed []teams.Team) *directory {
	d := &directory{teams: make(map[string]teams.Team, len(seed))}
	for _, t := range seed {
		d.teams[teams.CityKey(t.City)] = t
	}
	return d
}

func (d *directory) get(city string) (teams.Team, bool) {
	d.mu.RLock()
	t, ok := d.teams[teams.CityKey(city)]
	d.mu.RUnlock()
	return t, ok
}

// put creates or renames a team; an existing city keeps its spelling.
func (d *directory) put(t teams.Team) (stored teams.Team, created bool) {
	k := teams.CityKey(t.City)
	d.mu.Lock()
	defer d.mu.Unlock()
	old, ok := d.teams[k]
	if ok {
		t.City = old.City
	}
	d.teams[k] = t
	return t, !ok
}

// register serves teams.v1 GetTeam and PutTeam and the tutorial's
// /Teams/GetTeam from d.
func register(s *grpc.Server, d *directory, adminToken string) {
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "teams.v1.TeamsService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "GetTeam",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				req := new(teamsv1.GetTeamRequest)
				if err := dec(req); err != nil {
					return nil, err
				}
				if err := teams.ValidateCity(req.GetCity()); err != nil {
					return nil, status.Error(codes.InvalidArgument, err.Error())
				}
				t, ok := d.get(req.GetCity())
				if !ok {
					return nil, status.Errorf(codes.NotFound, "no team plays in %q", strings.TrimSpace(req.GetCity()))
				}
				return &teamsv1.GetTeamResponse{City: t.City, Nickname: t.Nickname}, nil
			},
		}, {
			MethodName: "PutTeam",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				req := new(teamsv1.PutTeamRequest)
				if err := dec(req); err != nil {
					return nil, err
				}
				if err := authorize(ctx, adminToken); err != nil {
					return nil, err
				}
				t := teams.Team{City: req.GetCity(), Nickname: req.GetNickname()}
				if err := t.Validate(); err != nil {
					return nil, status.Error(codes.InvalidArgument, err.Error())
				}
				stored, created := d.put(t)
				return &teamsv1.PutTeamResponse{City: stored.City, Nickname: stored.Nickname, Created: created}, nil
			},
		}},
	}, struct{}{})
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "Teams",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "GetTeam",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				req := new(legacyteams.TeamRequest)
				if err := dec(req); err != nil {
					return nil, err
				}
				if err := teams.ValidateCity(req.GetCity()); err != nil {
					return nil, status.Error(codes.InvalidArgument, err.Error())
				}
				// The tutorial answers an unknown city with OK and "not a member".
				nickname := teams.NotAMember
				if t, ok := d.get(req.GetCity()); ok {
					nickname = t.Nickname
				}
				return &legacyteams.TeamResponse{City: req.GetCity(), Nickname: nickname}, nil
			},
		}},
	}, struct{}{})
}

// authorize checks a write's bearer token in constant time, with
// Switchyard's codes: no token configured is PERMISSION_DENIED, a missing
// or wrong one UNAUTHENTICATED.
func authorize(ctx context.Context, adminToken string) error {
	if adminToken == "" {
		return status.Error(codes.PermissionDenied, "writes are disabled on this server: start it with -admin-token-file FILE")
	}
	var header string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			header = v[0]
		}
	}
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		return status.Error(codes.Unauthenticated, `writes need the header "Authorization: Bearer <admin token>"`)
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(adminToken)) != 1 {
		return status.Error(codes.Unauthenticated, "the bearer token is not the admin token")
	}
	return nil
}
