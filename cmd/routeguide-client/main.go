// Command routeguide-client runs the grpc-go RouteGuide example's client on
// the generated SDK, one call of each RPC kind against
// routeguide.RouteGuide: GetFeature (unary, a known and an unknown point),
// ListFeatures (server stream), RecordRoute (client stream, random points)
// and RouteChat (bidirectional stream).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"connectrpc.com/connect"

	legacyroute "github.com/switchyard/switchyard/gen/legacy/routeguide"
	"github.com/switchyard/switchyard/gen/legacy/routeguide/routeguideconnect"
	"github.com/switchyard/switchyard/internal/democlient"
)

func main() { democlient.Main("routeguide-client", run) }

type client struct {
	rg      routeguideconnect.RouteGuideClient
	out     io.Writer
	timeout time.Duration
}

func run(args []string, _ io.Reader, stdout io.Writer) error {
	var f democlient.Flags
	fs := flag.NewFlagSet("routeguide-client", flag.ContinueOnError)
	seed := fs.Uint64("seed", 0, "seed of RecordRoute's random route (0 picks one)")
	if err := f.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *seed == 0 {
		*seed = rand.Uint64()
	}
	ctx, stop := democlient.Context()
	defer stop()
	c := client{
		rg:      routeguideconnect.NewRouteGuideClient(f.HTTPClient(), f.BaseURL(), f.ClientOptions()...),
		out:     stdout,
		timeout: f.Timeout,
	}
	steps := []func(context.Context) error{
		func(ctx context.Context) error { return c.printFeature(ctx, point(409146138, -746188906)) },
		func(ctx context.Context) error { return c.printFeature(ctx, point(0, 0)) },
		func(ctx context.Context) error {
			return c.printFeatures(ctx, &legacyroute.Rectangle{Lo: point(400000000, -750000000), Hi: point(420000000, -730000000)})
		},
		func(ctx context.Context) error { return c.runRecordRoute(ctx, rand.New(rand.NewPCG(*seed, *seed))) },
		c.runRouteChat,
	}
	for _, step := range steps {
		callCtx, cancel := context.WithTimeout(ctx, c.timeout)
		err := step(callCtx)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

func point(lat, lng int32) *legacyroute.Point {
	return &legacyroute.Point{Latitude: lat, Longitude: lng}
}

func (c client) printFeature(ctx context.Context, p *legacyroute.Point) error {
	fmt.Fprintf(c.out, "Getting feature for point (%d, %d)\n", p.GetLatitude(), p.GetLongitude())
	f, err := c.rg.GetFeature(ctx, connect.NewRequest(p))
	if err != nil {
		return fmt.Errorf("GetFeature: %w", err)
	}
	c.feature(f.Msg)
	return nil
}

func (c client) feature(f *legacyroute.Feature) {
	fmt.Fprintf(c.out, "Feature: name: %q, point:(%d, %d)\n", f.GetName(), f.GetLocation().GetLatitude(), f.GetLocation().GetLongitude())
}

func (c client) printFeatures(ctx context.Context, r *legacyroute.Rectangle) error {
	fmt.Fprintf(c.out, "Looking for features within (%d, %d) to (%d, %d)\n",
		r.GetLo().GetLatitude(), r.GetLo().GetLongitude(), r.GetHi().GetLatitude(), r.GetHi().GetLongitude())
	stream, err := c.rg.ListFeatures(ctx, connect.NewRequest(r))
	if err != nil {
		return fmt.Errorf("ListFeatures: %w", err)
	}
	defer stream.Close()
	for stream.Receive() {
		c.feature(stream.Msg())
	}
	if err := stream.Err(); err != nil {
		return fmt.Errorf("ListFeatures: %w", err)
	}
	return nil
}

// runRecordRoute sends 2 to 101 random points, as the example does.
func (c client) runRecordRoute(ctx context.Context, r *rand.Rand) error {
	n := r.IntN(100) + 2
	fmt.Fprintf(c.out, "Traversing %d points.\n", n)
	stream := c.rg.RecordRoute(ctx)
	for range n {
		p := point(int32(r.IntN(180)-90)*1e7, int32(r.IntN(360)-180)*1e7)
		if err := stream.Send(p); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server ended the call; CloseAndReceive has its error
			}
			return fmt.Errorf("RecordRoute: %w", err)
		}
	}
	s, err := stream.CloseAndReceive()
	if err != nil {
		return fmt.Errorf("RecordRoute: %w", err)
	}
	fmt.Fprintf(c.out, "Route summary: point_count:%d feature_count:%d distance:%d elapsed_time:%d\n",
		s.Msg.GetPointCount(), s.Msg.GetFeatureCount(), s.Msg.GetDistance(), s.Msg.GetElapsedTime())
	return nil
}

// runRouteChat sends the example's six notes while printing every note the
// server returns, then closes its side and waits for the server's end.
func (c client) runRouteChat(ctx context.Context) error {
	notes := []*legacyroute.RouteNote{
		{Location: point(0, 1), Message: "First message"},
		{Location: point(0, 2), Message: "Second message"},
		{Location: point(0, 3), Message: "Third message"},
		{Location: point(0, 1), Message: "Fourth message"},
		{Location: point(0, 2), Message: "Fifth message"},
		{Location: point(0, 3), Message: "Sixth message"},
	}
	stream := c.rg.RouteChat(ctx)
	received := make(chan error, 1)
	go func() {
		for {
			in, err := stream.Receive()
			if errors.Is(err, io.EOF) {
				received <- nil
				return
			}
			if err != nil {
				received <- err
				return
			}
			fmt.Fprintf(c.out, "Got message %s at point(%d, %d)\n", in.GetMessage(), in.GetLocation().GetLatitude(), in.GetLocation().GetLongitude())
		}
	}()
	for _, n := range notes {
		if err := stream.Send(n); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server ended the call; the receiving side has its error
			}
			return fmt.Errorf("RouteChat: %w", err)
		}
	}
	if err := stream.CloseRequest(); err != nil {
		return fmt.Errorf("RouteChat: %w", err)
	}
	err := <-received
	_ = stream.CloseResponse()
	if err != nil {
		return fmt.Errorf("RouteChat: %w", err)
	}
	return nil
}
