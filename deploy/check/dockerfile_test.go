package check

import (
	"context"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

func parseDockerfile(t *testing.T, path string) []instructions.Stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("BuildKit parser: %v", err)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("BuildKit instructions: %v", err)
	}
	return stages
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, repo("deploy/Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	// The build is static: CGO_ENABLED=0 set before go build.
	static := false
	for _, cmd := range stages[0].Commands {
		switch c := cmd.(type) {
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				static = static || kv.Key == "CGO_ENABLED" && kv.Value == "0"
			}
		case *instructions.RunCommand:
			if strings.Contains(strings.Join(c.CmdLine, " "), "go build") && !static {
				t.Error("go build runs before CGO_ENABLED=0 is set")
			}
		}
	}
	if !static {
		t.Error("the build stage does not set CGO_ENABLED=0")
	}
	// The image builds on the Go that go.mod's toolchain line pins (the one
	// make and CI use), not on an older one with known vulnerabilities.
	gomod, err := os.ReadFile(repo("go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var toolchain string
	for line := range strings.Lines(string(gomod)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "toolchain go"); ok {
			toolchain = v
		}
	}
	if toolchain == "" {
		t.Fatal("go.mod has no toolchain line")
	}
	if want := "golang:" + toolchain + "-"; !strings.HasPrefix(stages[0].BaseName, want) {
		t.Errorf("the build stage is FROM %s; want the Go go.mod pins, %s...", stages[0].BaseName, want)
	}
	final := stages[len(stages)-1]
	var (
		user        string
		health      *instructions.HealthCheckCommand
		entrypoint  []string
		defaultArgs []string
	)
	for _, cmd := range final.Commands {
		switch c := cmd.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.HealthCheckCommand:
			health = c
		case *instructions.EntrypointCommand:
			entrypoint = c.CmdLine
		case *instructions.CmdCommand:
			defaultArgs = c.CmdLine
		}
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("the image runs as %q; want a non-root user", user)
	}
	if len(entrypoint) != 1 || !strings.HasSuffix(entrypoint[0], "/switchyard") {
		t.Errorf("ENTRYPOINT %q, want the switchyard binary", entrypoint)
	}
	checkFlags(t, "the Dockerfile's CMD", defaultArgs)
	if health == nil || len(health.Health.Test) < 3 || health.Health.Test[0] != "CMD" || health.Health.Test[2] != "healthcheck" {
		t.Fatalf("HEALTHCHECK %+v; want CMD [switchyard healthcheck ...]", health)
	}
	if health.Health.Timeout == 0 || health.Health.Interval == 0 {
		t.Error("HEALTHCHECK without an interval and a timeout")
	}
	// The HEALTHCHECK's own command line, against a live server and a
	// dead address.
	args := slices.Clone(health.Health.Test[3:])
	live := startSwitchyard(t)
	for i, a := range args {
		if a == "-addr" {
			args[i+1] = live
		}
	}
	if out, err := exec.Command(switchyard(t), append([]string{"healthcheck"}, args...)...).CombinedOutput(); err != nil {
		t.Errorf("the HEALTHCHECK against a live server: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	for i, a := range args {
		if a == "-addr" {
			args[i+1] = dead
		}
	}
	if out, err := exec.Command(switchyard(t), append([]string{"healthcheck"}, args...)...).CombinedOutput(); err == nil {
		t.Errorf("the HEALTHCHECK against a dead address succeeded:\n%s", out)
	}
}

// startSwitchyard runs the binary on a free loopback port until the test
// ends and returns its address.
func startSwitchyard(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, switchyard(t), "-addr", addr, "-data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "SWITCHYARD_POSTGRES_DSN=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("switchyard does not listen on %s", addr)
		}
	}
}

// The parser can fail: an instruction it does not know is rejected.
func TestDockerfileParserRejectsNonsense(t *testing.T) {
	p := t.TempDir() + "/Dockerfile"
	if err := os.WriteFile(p, []byte("FROM scratch\nHEALTHCHECK --interval=soon CMD true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(p)
	defer func() { _ = f.Close() }()
	res, err := parser.Parse(f)
	if err == nil {
		_, _, err = instructions.Parse(res.AST, nil)
	}
	if err == nil {
		t.Error("a HEALTHCHECK with an invalid interval was accepted")
	}
}
