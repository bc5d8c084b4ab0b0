package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

func loadCompose(t *testing.T, path string) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{abs}, cli.WithWorkingDirectory(filepath.Dir(abs)), cli.WithName("switchyard"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("compose-go: %v", err)
	}
	return p
}

func TestComposeFile(t *testing.T) {
	p := loadCompose(t, repo("deploy/compose.yaml"))
	for _, name := range []string{"postgres", "replica-1", "replica-2", "nginx"} {
		if _, err := p.GetService(name); err != nil {
			t.Fatalf("no service %s: %v", name, err)
		}
	}
	pg, _ := p.GetService("postgres")
	if pg.HealthCheck == nil || len(pg.HealthCheck.Test) == 0 || !strings.Contains(strings.Join(pg.HealthCheck.Test, " "), "pg_isready") {
		t.Errorf("postgres has no pg_isready readiness check: %+v", pg.HealthCheck)
	}
	for _, name := range []string{"replica-1", "replica-2"} {
		r, _ := p.GetService(name)
		if dep, ok := r.DependsOn["postgres"]; !ok || dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s does not wait for PostgreSQL to be healthy: %+v", name, r.DependsOn)
		}
		flags := checkFlags(t, name, r.Command)
		if dsn := r.Environment["SWITCHYARD_POSTGRES_DSN"]; dsn == nil || !strings.Contains(*dsn, "host=postgres") {
			t.Errorf("%s does not use the postgres service", name)
		}
		if r.StopGracePeriod == nil || flags["drain-delay"] == "" {
			t.Errorf("%s: no stop_grace_period or -drain-delay", name)
		}
	}
	nginx, _ := p.GetService("nginx")
	mounted := false
	for _, v := range nginx.Volumes {
		if strings.HasSuffix(v.Source, filepath.Join("deploy", "nginx", "switchyard.conf")) {
			mounted = true
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("nginx mounts %s: %v", v.Source, err)
			}
		}
	}
	if !mounted {
		t.Error("nginx does not mount deploy/nginx/switchyard.conf")
	}
}

// compose-go rejects what the compose specification does not allow.
func TestComposeRejectsUnknownKeys(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "compose.yaml")
	if err := os.WriteFile(bad, []byte("services:\n  x:\n    image: x\n    helthcheck: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{bad}, cli.WithWorkingDirectory(filepath.Dir(bad)), cli.WithName("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := opts.LoadProject(t.Context()); err == nil {
		t.Error("a misspelt key was accepted")
	}
}
