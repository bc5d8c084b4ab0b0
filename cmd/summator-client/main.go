// Command summator-client is the Pip.Services Summator tutorial's client on
// the generated SDK: it asks /Summator/sum to add two numbers (five and
// three unless told otherwise) and prints the result.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"connectrpc.com/connect"

	legacysummator "github.com/switchyard/switchyard/gen/legacy/summator"
	"github.com/switchyard/switchyard/gen/legacy/summator/summatorconnect"
	"github.com/switchyard/switchyard/internal/democlient"
)

func main() { democlient.Main("summator-client", run) }

func run(args []string, _ io.Reader, stdout io.Writer) error {
	var f democlient.Flags
	fs := flag.NewFlagSet("summator-client", flag.ContinueOnError)
	a := fs.Float64("a", 5, "first summand (float32)")
	b := fs.Float64("b", 3, "second summand (float32)")
	if err := f.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (use -a and -b)", fs.Args())
	}
	ctx, stop := democlient.Context()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	client := summatorconnect.NewSummatorClient(f.HTTPClient(), f.BaseURL(), f.ClientOptions()...)
	v1, v2 := float32(*a), float32(*b)
	res, err := client.Sum(ctx, connect.NewRequest(&legacysummator.Number1{Value1: v1, Value2: v2}))
	if err != nil {
		return fmt.Errorf("sum(%v, %v): %w", v1, v2, err)
	}
	fmt.Fprintf(stdout, "%v + %v = %v\n", v1, v2, res.Msg.GetValue())
	return nil
}
