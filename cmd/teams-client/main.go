// Command teams-client is the Teams tutorial's client on the generated SDK:
// it asks /Teams/GetTeam for the team of each city and prints
// "Teams client received: CITY NICKNAME", as the tutorial's run does.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"connectrpc.com/connect"

	legacyteams "github.com/switchyard/switchyard/gen/legacy/teams"
	"github.com/switchyard/switchyard/gen/legacy/teams/teamsconnect"
	"github.com/switchyard/switchyard/internal/democlient"
)

// tutorialCities are the cities the tutorial's client asks for.
var tutorialCities = []string{"Chicago", "Philadelphia", "Miami"}

func main() { democlient.Main("teams-client", run) }

func run(args []string, _ io.Reader, stdout io.Writer) error {
	var f democlient.Flags
	fs := flag.NewFlagSet("teams-client", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: teams-client [-addr host:port] [-protocol grpc|grpcweb|connect] [CITY...]")
		fs.PrintDefaults()
	}
	if err := f.Parse(fs, args); err != nil {
		return err
	}
	cities := fs.Args()
	if len(cities) == 0 {
		cities = tutorialCities
	}
	ctx, stop := democlient.Context()
	defer stop()
	client := teamsconnect.NewTeamsClient(f.HTTPClient(), f.BaseURL(), f.ClientOptions()...)
	for _, city := range cities {
		callCtx, cancel := context.WithTimeout(ctx, f.Timeout)
		res, err := client.GetTeam(callCtx, connect.NewRequest(&legacyteams.TeamRequest{City: city}))
		cancel()
		if err != nil {
			return fmt.Errorf("GetTeam(%q): %w", city, err)
		}
		fmt.Fprintln(stdout, "Teams client received: "+res.Msg.GetCity()+" "+res.Msg.GetNickname())
	}
	return nil
}
