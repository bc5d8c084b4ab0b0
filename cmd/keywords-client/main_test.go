package main

import (
	"io"
	"strings"
	"testing"
)

// Input the client cannot send is refused before any call, saying which
// line and why: text that is not UTF-8 (a protobuf string must be), and a
// line longer than the client reads. The address is never dialled.
func TestUnsendableInput(t *testing.T) {
	for name, tc := range map[string]struct{ input, want string }{
		"not UTF-8": {"bad \xff byte\nfine\n", "line 1 is not UTF-8 text"},
		"too long":  {strings.Repeat("x", maxLine+1) + "\n", "line 1 is longer than 4 MiB"},
	} {
		err := run([]string{"-addr", "127.0.0.1:1"}, strings.NewReader(tc.input), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}
