package main

import (
	"io"
	"slices"
	"testing"
)

func TestCORSOriginsFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"*"}},
		{[]string{"-cors-origins", ""}, nil},
		{[]string{"-cors-origins", " https://a.example , ,http://localhost:8080"}, []string{"https://a.example", "http://localhost:8080"}},
		// As a browser writes its Origin header: lower case, no default port.
		{[]string{"-cors-origins", "HTTPS://App.Example.com:443,http://x.example:80,https://x.example:80,http://[::1]:80,https://*.example.com:443"},
			[]string{"https://app.example.com", "http://x.example", "https://x.example:80", "http://[::1]", "https://*.example.com"}},
	} {
		o, err := parseFlags(tc.args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := corsOrigins(o.corsOrigins); !slices.Equal(got, tc.want) {
			t.Errorf("%v: origins %q, want %q", tc.args, got, tc.want)
		}
	}
}
