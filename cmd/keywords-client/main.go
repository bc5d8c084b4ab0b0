// Command keywords-client is the keyword-extraction blog post's Go client on
// the generated SDK: it reads text from standard input, one line at a time,
// and prints "Keywords: [...]" for each line.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"connectrpc.com/connect"

	legacykeywords "github.com/switchyard/switchyard/gen/legacy/keywords"
	"github.com/switchyard/switchyard/gen/legacy/keywords/keywordsconnect"
	"github.com/switchyard/switchyard/internal/democlient"
)

// maxLine bounds one line of input; the server's default limit is 1 MiB.
const maxLine = 4 << 20

func main() { democlient.Main("keywords-client", run) }

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	var f democlient.Flags
	fs := flag.NewFlagSet("keywords-client", flag.ContinueOnError)
	if err := f.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: the text is read from standard input", fs.Args())
	}
	ctx, stop := democlient.Context()
	defer stop()
	client := keywordsconnect.NewKeywordServiceClient(f.HTTPClient(), f.BaseURL(), f.ClientOptions()...)
	prompt := isTerminal(stdin)
	lines := bufio.NewScanner(stdin)
	lines.Buffer(make([]byte, 0, 64<<10), maxLine)
	for n := 1; ; n++ {
		if prompt {
			fmt.Fprint(os.Stderr, "Enter text: ")
		}
		if !lines.Scan() {
			if errors.Is(lines.Err(), bufio.ErrTooLong) {
				return fmt.Errorf("line %d is longer than %d MiB, the most this client reads (the server takes 1 MiB unless its -keyword-max-bytes says otherwise)", n, maxLine>>20)
			}
			return lines.Err()
		}
		if !utf8.Valid(lines.Bytes()) {
			return fmt.Errorf("line %d is not UTF-8 text, as a protobuf string must be", n)
		}
		callCtx, cancel := context.WithTimeout(ctx, f.Timeout)
		res, err := client.GetKeywords(callCtx, connect.NewRequest(&legacykeywords.Request{Text: lines.Text()}))
		cancel()
		if err != nil {
			return fmt.Errorf("GetKeywords: %w", err)
		}
		fmt.Fprintln(stdout, "Keywords:", res.Msg.GetKeywords())
	}
}

// isTerminal reports whether r is an interactive terminal (then a prompt helps).
func isTerminal(r io.Reader) bool {
	file, ok := r.(*os.File)
	if !ok {
		return false
	}
	info, err := file.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
