package check

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
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

var upstreamServer = regexp.MustCompile(`(?m)^\s*server\s+([a-z0-9.-]+):\d+`)

// nginx resolves its upstreams' names once, at start: through Docker's
// DNS a replica recreated with a new address was never reached again,
// and nginx did not start at all while one replica was stopped (its name
// not found). Each replica has a fixed address, and nginx's /etc/hosts
// (extra_hosts) names it: every upstream deploy/nginx/switchyard.conf
// names.
func TestComposeNginxReachesReplicasAtFixedAddresses(t *testing.T) {
	p := loadCompose(t, repo("deploy/compose.yaml"))
	conf, err := os.ReadFile(repo("deploy/nginx/switchyard.conf"))
	if err != nil {
		t.Fatal(err)
	}
	nginx, err := p.GetService("nginx")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range upstreamServer.FindAllStringSubmatch(string(conf), -1) {
		names[m[1]] = true
	}
	if len(names) != 2 {
		t.Fatalf("switchyard.conf's upstreams name %v, want replica-1 and replica-2", names)
	}
	addrs := map[string]string{}
	for name := range names {
		r, err := p.GetService(name)
		if err != nil {
			t.Errorf("switchyard.conf names %s, which is no service: %v", name, err)
			continue
		}
		n := r.Networks["backend"]
		if n == nil || n.Ipv4Address == "" {
			t.Errorf("%s has no fixed ipv4_address on the backend network", name)
			continue
		}
		if other, ok := addrs[n.Ipv4Address]; ok {
			t.Errorf("%s and %s share %s", name, other, n.Ipv4Address)
		}
		addrs[n.Ipv4Address] = name
		if got := nginx.ExtraHosts[name]; len(got) != 1 || got[0] != n.Ipv4Address {
			t.Errorf("nginx's extra_hosts give %s %v, want its address %s", name, got, n.Ipv4Address)
		}
	}
	// Docker hands the other containers (postgres, one added later) their
	// addresses from the network's ip_range: a fixed address inside it
	// could go to one of them first, and the replica would not start.
	if a := nginx.Networks["backend"]; a != nil && a.Ipv4Address != "" {
		addrs[a.Ipv4Address] = "nginx"
	}
	var subnet, dynamic netip.Prefix
	if ipam := p.Networks["backend"].Ipam.Config; len(ipam) == 1 {
		subnet, _ = netip.ParsePrefix(ipam[0].Subnet)
		dynamic, _ = netip.ParsePrefix(ipam[0].IPRange)
	}
	if !subnet.IsValid() || !dynamic.IsValid() || !subnet.Contains(dynamic.Addr()) {
		t.Fatalf("the backend network has no subnet with an ip_range inside it for the addresses Docker picks: %+v", p.Networks["backend"].Ipam)
	}
	for addr, name := range addrs {
		a, err := netip.ParseAddr(addr)
		if err != nil || !subnet.Contains(a) || dynamic.Contains(a) {
			t.Errorf("%s's fixed address %s must be in the backend subnet %s and outside its ip_range %s (%v)", name, addr, subnet, dynamic, err)
		}
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
