package democlient

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestFlags(t *testing.T) {
	tests := []struct {
		args     []string
		url      string
		nOpts    int
		errorHas string
	}{
		{args: nil, url: "http://localhost:50051", nOpts: 1},
		{args: []string{"-addr", "127.0.0.1:9", "-protocol", "connect"}, url: "http://127.0.0.1:9", nOpts: 0},
		{args: []string{"-addr", "https://api.example.com/", "-protocol", "grpcweb"}, url: "https://api.example.com", nOpts: 1},
		{args: []string{"-protocol", "soap"}, errorHas: "use one of grpc, grpcweb, connect"},
		{args: []string{"-addr", ""}, errorHas: "-addr is empty"},
		{args: []string{"-no-such-flag"}, errorHas: "not defined"},
		{args: []string{"-addr", "foo:bar"}, errorHas: `-addr "foo:bar": give host:port`},
		{args: []string{"-addr", "localhost"}, errorHas: `-addr "localhost": give host:port`},
		{args: []string{"-timeout", "0s"}, errorHas: "-timeout 0s: give a positive duration"},
		{args: []string{"-timeout", "-5s"}, errorHas: "-timeout -5s: give a positive duration"},
		{args: []string{"Chicago", "-protocol", "grpc"}, errorHas: "the flag -protocol comes after the arguments: put flags first, e.g. test -protocol ARG"},
		{args: []string{"Chicago", "--timeout=1s"}, errorHas: "the flag --timeout=1s comes after the arguments"},
		{args: []string{"-addr", "[::1]:50051", "Chicago", "-unknown-city"}, url: "http://[::1]:50051", nOpts: 1},
		{args: []string{"--", "-timeout"}, url: "http://localhost:50051", nOpts: 1},
		{args: []string{"Chicago", "--", "-timeout"}, url: "http://localhost:50051", nOpts: 1},
	}
	for _, tt := range tests {
		var f Flags
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		err := f.Parse(fs, tt.args)
		if tt.errorHas != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errorHas) {
				t.Errorf("Parse(%q) error = %v, want one containing %q", tt.args, err, tt.errorHas)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.args, err)
			continue
		}
		if got := f.BaseURL(); got != tt.url {
			t.Errorf("Parse(%q): BaseURL = %q, want %q", tt.args, got, tt.url)
		}
		if got := len(f.ClientOptions()); got != tt.nOpts {
			t.Errorf("Parse(%q): %d client options, want %d", tt.args, got, tt.nOpts)
		}
	}
}
