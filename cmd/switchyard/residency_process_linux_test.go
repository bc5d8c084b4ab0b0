package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"connectrpc.com/connect"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
)

// mappingFlags is the VmFlags line of the process's mapping of exe with
// the given permissions ("r--p": the read-only data).
func mappingFlags(t *testing.T, pid int, exe, perms string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for line := range strings.Lines(string(b)) {
		if fields := strings.Fields(line); len(fields) >= 6 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = fields[1] == perms && fields[5] == exe
			continue
		}
		if v, ok := strings.CutPrefix(line, "VmFlags:"); ok && in {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s mapping of %s in /proc/%d/smaps", perms, exe, pid)
	return ""
}

// -executable-pages reaches the process: trim (the default) and release
// release the start-up pages (the debug line says so, and whether it
// trimmed), only trim has the kernel read the read-only data a page at a
// time (VmFlags rr), and keep does neither. Each serves calls after it.
func TestExecutablePagesFlag(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		released bool // the "start-up pages released" line
		trim     bool
	}{
		{nil, true, true},
		{[]string{"-executable-pages", "trim"}, true, true},
		{[]string{"-executable-pages", "release"}, true, false},
		{[]string{"-executable-pages", "keep"}, false, false},
	} {
		name := "default"
		if tc.args != nil {
			name = tc.args[1]
		}
		t.Run(name, func(t *testing.T) {
			p := startProcess(t, append([]string{"-log-level", "debug"}, tc.args...)...)
			// Serving begins after the pages are dealt with: once a call
			// is answered, they have been.
			_, err := p.client.GetTeam(context.Background(), connect.NewRequest(&teamsv1.GetTeamRequest{City: "Nowhere"}))
			if connect.CodeOf(err) != connect.CodeNotFound {
				t.Fatalf("GetTeam of an unknown city: %v, want not_found", err)
			}
			var line struct {
				Bytes int  `json:"bytes"`
				Trim  bool `json:"trim"`
			}
			found := false
			for l := range strings.Lines(p.logs()) {
				if strings.Contains(l, `"msg":"start-up pages released"`) {
					if err := json.Unmarshal([]byte(l), &line); err != nil {
						t.Fatal(err)
					}
					found = true
				}
			}
			if found != tc.released || line.Trim != tc.trim || (found && line.Bytes == 0) {
				t.Errorf("start-up pages released: logged %v (%+v), want logged %v with trim %v and bytes", found, line, tc.released, tc.trim)
			}
			if strings.Contains(p.logs(), "releasing start-up pages") {
				t.Errorf("the release failed:\n%s", p.logs())
			}
			flags := mappingFlags(t, p.cmd.Process.Pid, switchyardBinary(t), "r--p")
			if rr := strings.Contains(" "+flags+" ", " rr "); rr != tc.trim {
				t.Errorf("read-only data VmFlags %q: rr %v, want %v", flags, rr, tc.trim)
			}
		})
	}
	_, err := parseFlags([]string{"-executable-pages", "drop"}, nil)
	if err == nil || !strings.Contains(err.Error(), `-executable-pages "drop" is not valid: use trim or release or keep`) {
		t.Errorf("-executable-pages drop: %v", err)
	}
}
