//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDemoClients runs every cmd/*-client binary in every protocol and
// checks that it prints what the tutorial's run prints.
func TestDemoClients(t *testing.T) {
	routeGuide := regexp.MustCompile(`^Getting feature for point \(409146138, -746188906\)
Feature: name: "Berkshire Valley Management Area Trail, Jefferson, NJ, USA", point:\(409146138, -746188906\)
Getting feature for point \(0, 0\)
Feature: name: "", point:\(0, 0\)
Looking for features within \(400000000, -750000000\) to \(420000000, -730000000\)
(Feature: name: ".*", point:\(\d+, -\d+\)\n){100}Traversing (\d+) points.
Route summary: point_count:(\d+) feature_count:0 distance:[1-9]\d* elapsed_time:0
(Got message \w+ message at point\(0, [123]\)\n){9,}$`)

	for _, protocol := range []string{"grpc", "grpcweb", "connect"} {
		flags := []string{"-addr", addr, "-protocol", protocol}
		t.Run(protocol, func(t *testing.T) {
			t.Run("teams-client", func(t *testing.T) {
				want := "Teams client received: Chicago Jackals\nTeams client received: Philadelphia Foxes\nTeams client received: Miami not a member\n"
				if out := mustRun(t, "", "teams-client", flags...); out != want {
					t.Errorf("output\n%s\nwant\n%s", out, want)
				}
			})
			t.Run("greeter-client", func(t *testing.T) {
				want := "Greeter client received: Hello, you!\nGreeter client received: Hello again, you!\n"
				if out := mustRun(t, "", "greeter-client", flags...); out != want {
					t.Errorf("output\n%s\nwant\n%s", out, want)
				}
			})
			t.Run("summator-client", func(t *testing.T) {
				if out := mustRun(t, "", "summator-client", flags...); out != "5 + 3 = 8\n" {
					t.Errorf("output %q, want %q", out, "5 + 3 = 8\n")
				}
			})
			t.Run("keywords-client", func(t *testing.T) {
				in := "I like it, very much\nThe quick brown fox jumps over the lazy dog.\n"
				want := "Keywords: [like it much]\nKeywords: [quick brown fox jumps lazy dog]\n"
				if out := mustRun(t, in, "keywords-client", flags...); out != want {
					t.Errorf("output\n%s\nwant\n%s", out, want)
				}
			})
			t.Run("routeguide-client", func(t *testing.T) {
				out := mustRun(t, "", "routeguide-client", append(flags, "-seed", "1")...)
				m := routeGuide.FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("output does not match the example's run:\n%s", out)
				}
				if m[2] != m[3] {
					t.Errorf("sent %s points, the summary counts %s", m[2], m[3])
				}
			})
		})
	}
	t.Run("errors", func(t *testing.T) {
		res := run(t, "", "summator-client", "-addr", addr, "-a", "3e38", "-b", "3e38")
		if res.exitCode != 1 || !strings.Contains(res.stderr, "out_of_range") {
			t.Errorf("overflow: exit %d, stderr %q; want 1 and out_of_range", res.exitCode, res.stderr)
		}
		res = run(t, "", "teams-client", "-addr", addr, "-protocol", "soap")
		if res.exitCode == 0 || !strings.Contains(res.stderr, "grpc, grpcweb, connect") {
			t.Errorf("bad -protocol: exit %d, stderr %q", res.exitCode, res.stderr)
		}
		res = run(t, "", "teams-client", "-addr", "127.0.0.1:1", "-timeout", "5s")
		if res.exitCode != 1 || !strings.Contains(res.stderr, "unavailable") {
			t.Errorf("no server: exit %d, stderr %q; want 1 and unavailable", res.exitCode, res.stderr)
		}
	})
}

// TestSDKExample builds and runs examples/sdk, a module of its own, from
// its committed go.mod and go.sum only (-mod=readonly: no edits, no guessing).
func TestSDKExample(t *testing.T) {
	dir := filepath.Join(repoRoot, "examples", "sdk")
	bin := filepath.Join(t.TempDir(), "sdk")
	for _, args := range [][]string{{"vet", "./..."}, {"build", "-o", bin, "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in examples/sdk: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	want := `GetTeam: Chicago Jackals
GetTeam: Miami is not_found
ListTeams: New York Metros
SayHello: Hello, SDK!
GetKeywords: quick brown fox
Sum: 8
`
	// The base URL, or HOST:PORT as the tutorial clients take it.
	for _, addr := range []string{baseURL, strings.TrimPrefix(baseURL, "http://")} {
		if out := mustRun(t, "", bin, "-addr", addr); out != want {
			t.Errorf("examples/sdk -addr %s printed\n%s\nwant\n%s", addr, out, want)
		}
	}
}
