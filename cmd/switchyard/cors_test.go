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
	} {
		o, err := parseFlags(tc.args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := splitOrigins(o.corsOrigins); !slices.Equal(got, tc.want) {
			t.Errorf("%v: origins %q, want %q", tc.args, got, tc.want)
		}
	}
}
