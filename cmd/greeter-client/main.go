// Command greeter-client is the gRPC quick start's helloworld client on the
// generated SDK: it calls SayHello and SayHelloAgain and prints
// "Greeter client received: ..." for each.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"connectrpc.com/connect"

	"github.com/switchyard/switchyard/gen/legacy/helloworld"
	"github.com/switchyard/switchyard/gen/legacy/helloworld/helloworldconnect"
	"github.com/switchyard/switchyard/internal/democlient"
)

func main() { democlient.Main("greeter-client", run) }

func run(args []string, _ io.Reader, stdout io.Writer) error {
	var f democlient.Flags
	fs := flag.NewFlagSet("greeter-client", flag.ContinueOnError)
	name := fs.String("name", "you", "name to greet")
	if err := f.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (use -name)", fs.Args())
	}
	ctx, stop := democlient.Context()
	defer stop()
	client := helloworldconnect.NewGreeterClient(f.HTTPClient(), f.BaseURL(), f.ClientOptions()...)
	calls := []struct {
		method string
		call   func(context.Context, *connect.Request[helloworld.HelloRequest]) (*connect.Response[helloworld.HelloReply], error)
	}{
		{"SayHello", client.SayHello},
		{"SayHelloAgain", client.SayHelloAgain},
	}
	for _, c := range calls {
		callCtx, cancel := context.WithTimeout(ctx, f.Timeout)
		res, err := c.call(callCtx, connect.NewRequest(&helloworld.HelloRequest{Name: *name}))
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", c.method, err)
		}
		fmt.Fprintln(stdout, "Greeter client received: "+res.Msg.GetMessage())
	}
	return nil
}
