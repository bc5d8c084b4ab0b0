package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The admin token is one line of printable ASCII, from a file or the
// environment: white space around it is dropped; one no client could
// send, or none at all where one was given, is refused with the reason.
func TestLoadAdminToken(t *testing.T) {
	dir := t.TempDir()
	n := 0
	file := func(content string) string { // a file of its own per case
		n++
		p := filepath.Join(dir, fmt.Sprintf("token%d", n))
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, path, env string
		want, wantErr   string
	}{
		{name: "nothing", want: ""},
		{name: "environment", env: "  s3cret\n", want: "s3cret"},
		{name: "file", path: file("c2VjcmV0Cg==\n"), want: "c2VjcmV0Cg=="},
		{name: "file over environment", path: file("from-file"), env: "from-env", want: "from-file"},
		{name: "blank environment", env: " \t", wantErr: "SWITCHYARD_ADMIN_TOKEN is empty or only white space"},
		{name: "blank file", path: file(" \n"), wantErr: "is empty or only white space"},
		{name: "two lines", path: file("abc\ndef\n"), wantErr: "the token has byte 0x0a at offset 3"},
		{name: "a space inside", env: "abc def", wantErr: "SWITCHYARD_ADMIN_TOKEN: the token has byte 0x20 at offset 3"},
		{name: "raw random bytes", path: file("ab\xff\x01"), wantErr: "the token has byte 0xff at offset 2"},
		{name: "missing file", path: filepath.Join(dir, "none"), wantErr: "admin token: open "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SWITCHYARD_ADMIN_TOKEN", tc.env)
			got, err := loadAdminToken(tc.path)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("token %q, error %v; want an error containing %q", got, err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || got != tc.want):
				t.Errorf("token %q, error %v; want %q", got, err, tc.want)
			}
		})
	}
}
