// Command sdk calls Switchyard the way a Go program outside this repository
// does: it imports the generated packages under gen/ (messages and
// ...connect clients) and nothing else from the repository.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"

	greeterv1 "github.com/switchyard/switchyard/gen/greeter/v1"
	"github.com/switchyard/switchyard/gen/greeter/v1/greeterv1connect"
	keywordsv1 "github.com/switchyard/switchyard/gen/keywords/v1"
	"github.com/switchyard/switchyard/gen/keywords/v1/keywordsv1connect"
	summatorv1 "github.com/switchyard/switchyard/gen/summator/v1"
	"github.com/switchyard/switchyard/gen/summator/v1/summatorv1connect"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
)

func main() {
	addr := flag.String("addr", "http://localhost:50051", "Switchyard's base URL, or HOST:PORT as the tutorial clients take it (http://HOST:PORT)")
	flag.Parse()
	baseURL := *addr
	if !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	if err := run(baseURL); err != nil {
		fmt.Fprintln(os.Stderr, "sdk:", err)
		os.Exit(1)
	}
}

func run(baseURL string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Connect unary calls work over HTTP/1.1 with the default client;
	// connect.WithGRPC() or connect.WithGRPCWeb() pick the other protocols
	// (gRPC needs an HTTP/2 client).
	teams := teamsv1connect.NewTeamsServiceClient(http.DefaultClient, baseURL)
	team, err := teams.GetTeam(ctx, connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"}))
	if err != nil {
		return err
	}
	fmt.Printf("GetTeam: %s %s\n", team.Msg.GetCity(), team.Msg.GetNickname())

	// An unknown city is a NOT_FOUND error in v1.
	_, err = teams.GetTeam(ctx, connect.NewRequest(&teamsv1.GetTeamRequest{City: "Miami"}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		return fmt.Errorf("GetTeam(Miami): got %v, want not_found", err)
	}
	fmt.Printf("GetTeam: Miami is %v\n", connect.CodeOf(err))

	// Server streaming.
	stream, err := teams.ListTeams(ctx, connect.NewRequest(&teamsv1.ListTeamsRequest{CityPrefix: "new"}))
	if err != nil {
		return err
	}
	for stream.Receive() {
		fmt.Printf("ListTeams: %s %s\n", stream.Msg().GetCity(), stream.Msg().GetNickname())
	}
	if err := errors.Join(stream.Err(), stream.Close()); err != nil {
		return err
	}

	greeter := greeterv1connect.NewGreeterServiceClient(http.DefaultClient, baseURL, connect.WithGRPCWeb())
	hello, err := greeter.SayHello(ctx, connect.NewRequest(&greeterv1.SayHelloRequest{Name: "SDK"}))
	if err != nil {
		return err
	}
	fmt.Println("SayHello:", hello.Msg.GetMessage())

	// GetKeywords has no side effects, so it may be a GET, whose message
	// travels in the URL: a text of up to 1 MiB would pass the server's
	// header limit (-max-header-bytes, 64 KiB), so a request past 8 KiB
	// goes as a POST instead.
	keywords := keywordsv1connect.NewKeywordsServiceClient(http.DefaultClient, baseURL,
		connect.WithHTTPGet(), connect.WithHTTPGetMaxURLSize(8<<10, true))
	kw, err := keywords.GetKeywords(ctx, connect.NewRequest(&keywordsv1.GetKeywordsRequest{Text: "the quick brown fox"}))
	if err != nil {
		return err
	}
	fmt.Println("GetKeywords:", strings.Join(kw.Msg.GetKeywords(), " "))

	summator := summatorv1connect.NewSummatorServiceClient(http.DefaultClient, baseURL)
	sum, err := summator.Sum(ctx, connect.NewRequest(&summatorv1.SumRequest{Value1: 5, Value2: 3}))
	if err != nil {
		return err
	}
	fmt.Println("Sum:", sum.Msg.GetValue())
	return nil
}
