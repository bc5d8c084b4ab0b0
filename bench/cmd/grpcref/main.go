// Command grpcref is the benchmark's same-work peer: a plain grpc-go server
// for the procedures Switchyard is measured on, with the same semantics
// and the same domain work because it calls the same domain packages
// (services/teams with its SQLite or PostgreSQL store, services/routeguide).
// It is the peer of the transport rows (GetFeature, ListFeatures,
// RecordRoute, RouteChat) and an extra row for GetTeam read from the store.
// Its service descriptors are written by hand over the gen/ message types:
// Switchyard deliberately generates no grpc-go stubs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/bench/internal/grpcpeer"
	legacyteams "github.com/switchyard/switchyard/gen/legacy/teams"
	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/services/routeguide"
	"github.com/switchyard/switchyard/services/teams"
	"github.com/switchyard/switchyard/services/teams/sqlstore"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address; the bound address is printed on stdout")
	dataDir := flag.String("data-dir", "", "team directory (SQLite, as switchyard's -data-dir)")
	dsn := flag.String("postgres-dsn", "", "keep teams in this PostgreSQL database instead (as switchyard's flag)")
	tokenFile := flag.String("admin-token-file", "", "file holding the bearer token that enables PutTeam (as switchyard's flag)")
	cert := flag.String("tls-cert", "", "PEM certificate file: serve TLS (ALPN h2) instead of cleartext; needs -tls-key")
	key := flag.String("tls-key", "", "PEM private key file of -tls-cert")
	flag.Parse()
	if err := run(*addr, *dataDir, *dsn, *tokenFile, *cert, *key); err != nil {
		fmt.Fprintln(os.Stderr, "grpcref:", err)
		os.Exit(1)
	}
}

func run(addr, dataDir, dsn, tokenFile, cert, key string) error {
	if (dataDir == "") == (dsn == "") {
		return errors.New("give one of -data-dir and -postgres-dsn: teams are read from the store switchyard reads")
	}
	token, err := grpcpeer.Token(tokenFile)
	if err != nil {
		return err
	}
	// The same store switchyard serves, so a GetTeam costs the same
	// domain work on both servers and only the RPC stack differs.
	var store teams.Store
	if dsn != "" {
		store, err = sqlstore.OpenPostgres(context.Background(), dsn)
	} else {
		store, err = sqlstore.OpenSQLite(context.Background(), dataDir)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	return grpcpeer.Serve(addr, cert, key, func(s *grpc.Server) { register(s, store, token) })
}

// register serves teams.v1 GetTeam and PutTeam, the tutorial's
// /Teams/GetTeam and routeguide.v1 on s.
func register(s *grpc.Server, store teams.Store, adminToken string) {
	th := teams.NewHandler(store, adminToken)
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "teams.v1.TeamsService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "GetTeam",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				req := new(teamsv1.GetTeamRequest)
				if err := dec(req); err != nil {
					return nil, err
				}
				t, err := th.Lookup(ctx, req.GetCity())
				if err != nil {
					return nil, toStatus(err)
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
				// The domain handler checks the token and writes, so the
				// write path is Switchyard's, less its RPC stack.
				creq := connect.NewRequest(req)
				if md, ok := metadata.FromIncomingContext(ctx); ok {
					for _, v := range md.Get("authorization") {
						creq.Header().Add("Authorization", v)
					}
				}
				resp, err := th.PutTeam(ctx, creq)
				if err != nil {
					return nil, toStatus(err)
				}
				return resp.Msg, nil
			},
		}},
	}, struct{}{})
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "Teams",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "GetTeam",
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				req := new(legacyteams.TeamRequest)
				if err := dec(req); err != nil {
					return nil, err
				}
				// The tutorial answers an unknown city with OK and "not a member".
				if err := teams.ValidateCity(req.GetCity()); err != nil {
					return nil, status.Error(codes.InvalidArgument, err.Error())
				}
				t, err := store.Get(ctx, req.GetCity())
				switch {
				case errors.Is(err, teams.ErrNotFound):
					return &legacyteams.TeamResponse{City: req.GetCity(), Nickname: teams.NotAMember}, nil
				case err != nil:
					return nil, status.Error(codes.Internal, err.Error())
				}
				return &legacyteams.TeamResponse{City: t.City, Nickname: t.Nickname}, nil
			},
		}},
	}, struct{}{})

	rg := routeguide.NewHandler(routeguide.DefaultDB(), routeguide.Options{})
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "routeguide.v1.RouteGuideService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "GetFeature",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				req := new(routeguidev1.GetFeatureRequest)
				if err := dec(req); err != nil {
					return nil, err
				}
				f, err := rg.Feature(routeguide.Point{Latitude: req.GetLatitude(), Longitude: req.GetLongitude()})
				if err != nil {
					return nil, toStatus(err)
				}
				return &routeguidev1.GetFeatureResponse{Name: f.Name, Location: toProto(f.Location)}, nil
			},
		}},
		Streams: []grpc.StreamDesc{
			{StreamName: "ListFeatures", ServerStreams: true, Handler: func(_ any, stream grpc.ServerStream) error {
				req := new(routeguidev1.ListFeaturesRequest)
				if err := stream.RecvMsg(req); err != nil {
					return err
				}
				features, err := rg.Within(routeguide.Rect{Lo: fromProto(req.GetLo()), Hi: fromProto(req.GetHi())})
				if err != nil {
					return toStatus(err)
				}
				for f := range features {
					if err := stream.SendMsg(&routeguidev1.ListFeaturesResponse{Name: f.Name, Location: toProto(f.Location)}); err != nil {
						return err
					}
				}
				return nil
			}},
			{StreamName: "RecordRoute", ClientStreams: true, Handler: func(_ any, stream grpc.ServerStream) error {
				var recvErr error
				sum, err := rg.Record(func() (routeguide.Point, bool) {
					req := new(routeguidev1.RecordRouteRequest)
					if err := stream.RecvMsg(req); err != nil {
						if !errors.Is(err, io.EOF) {
							recvErr = err
						}
						return routeguide.Point{}, false
					}
					return routeguide.Point{Latitude: req.GetLatitude(), Longitude: req.GetLongitude()}, true
				}, func() error { return recvErr })
				if err != nil {
					return toStatus(err)
				}
				return stream.SendMsg(&routeguidev1.RecordRouteResponse{
					PointCount: sum.PointCount, FeatureCount: sum.FeatureCount, Distance: sum.Distance, ElapsedTime: sum.ElapsedTime,
				})
			}},
			{StreamName: "RouteChat", ServerStreams: true, ClientStreams: true, Handler: func(_ any, stream grpc.ServerStream) error {
				for {
					in := new(routeguidev1.RouteChatRequest)
					if err := stream.RecvMsg(in); err != nil {
						if errors.Is(err, io.EOF) {
							return nil
						}
						return err
					}
					kept, err := rg.Chat(stream.Context(), routeguide.Note{Location: fromProto(in.GetLocation()), Message: in.GetMessage()})
					if err != nil {
						return toStatus(err)
					}
					for _, n := range kept {
						if err := stream.SendMsg(&routeguidev1.RouteChatResponse{Location: toProto(n.Location), Message: n.Message}); err != nil {
							return err
						}
					}
				}
			}},
		},
	}, struct{}{})
}

// toStatus turns the domain packages' connect errors into gRPC statuses;
// connect's codes are gRPC's codes.
func toStatus(err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return status.Error(codes.Code(ce.Code()), ce.Message())
	}
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	return status.Error(codes.Unknown, err.Error())
}

func toProto(p routeguide.Point) *routeguidev1.Point {
	return &routeguidev1.Point{Latitude: p.Latitude, Longitude: p.Longitude}
}

func fromProto(p *routeguidev1.Point) routeguide.Point {
	return routeguide.Point{Latitude: p.GetLatitude(), Longitude: p.GetLongitude()}
}
