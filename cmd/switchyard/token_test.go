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

// A token that starts the server but is likely a mistake gets a warning
// each: one short enough to guess, and a SWITCHYARD_ADMIN_TOKEN that
// -admin-token-file overrides.
func TestAdminTokenWarnings(t *testing.T) {
	for _, tc := range []struct {
		name, path, env, token string
		want                   []string
	}{
		{name: "none"},
		{name: "long from the environment", env: "0123456789abcdef", token: "0123456789abcdef"},
		{name: "long from a file", path: "/run/token", token: "0123456789abcdef"},
		{name: "short", env: "s3cret", token: "s3cret", want: []string{"the admin token is 6 bytes long"}},
		{name: "file and environment", path: "/run/token", env: "from-env-0123456", token: "from-file-0123456",
			want: []string{"SWITCHYARD_ADMIN_TOKEN is set but not used: the admin token is the one in -admin-token-file /run/token"}},
		{name: "file and blank environment", path: "/run/token", env: " ", token: "from-file-0123456"},
		{name: "short file and environment", path: "/run/token", env: "x", token: "abc",
			want: []string{"SWITCHYARD_ADMIN_TOKEN is set but not used", "the admin token is 3 bytes long"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SWITCHYARD_ADMIN_TOKEN", tc.env)
			got := adminTokenWarnings(tc.path, tc.token)
			if len(got) != len(tc.want) {
				t.Fatalf("warnings %q; want %d containing %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %d is %q; want one containing %q", i, got[i], w)
				}
			}
		})
	}
}

// The real binary writes those warnings at start-up, and still serves.
func TestAdminTokenWarningsLogged(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(file, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcessEnv(t, []string{"SWITCHYARD_ADMIN_TOKEN=from-the-environment"}, "-admin-token-file", file)
	p.stop(t)
	log := p.logs()
	for _, want := range []string{
		`"level":"WARN","msg":"SWITCHYARD_ADMIN_TOKEN is set but not used: the admin token is the one in -admin-token-file ` + file + `"`,
		`"level":"WARN","msg":"the admin token is 5 bytes long`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log has no line with %s:\n%s", want, log)
		}
	}
}
