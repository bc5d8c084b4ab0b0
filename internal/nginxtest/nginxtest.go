// Package nginxtest runs the committed nginx configuration
// (deploy/nginx/switchyard.conf) in a private nginx for tests: the file as
// committed, with the test's replicas, free loopback ports and temporary
// paths in place of its addresses, run as the current user with every
// file under a temporary directory. It needs Debian's nginx (the Makefile's
// DEB_PACKAGES); without it a test is skipped loudly, except under CI=true,
// where it fails.
package nginxtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/testserver"
)

// ConfigPath is the committed configuration, relative to the repository.
const ConfigPath = "deploy/nginx/switchyard.conf"

// Binary finds nginx: $PATH, then /usr/sbin/nginx.
func Binary() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", errors.New("no nginx found: apt-get install nginx (make deps)")
}

// Require returns the nginx binary, skipping the test loudly when there is
// none, or failing it under CI.
func Require(t testing.TB) string {
	t.Helper()
	bin, err := Binary()
	if err == nil {
		return bin
	}
	if os.Getenv("CI") != "" && os.Getenv("CI") != "false" {
		t.Fatalf("CI: nginx tests cannot be skipped: %v", err)
	}
	msg := "\n!!!!!!!! SKIPPING the nginx tests: " + err.Error() + " !!!!!!!!\n"
	fmt.Fprint(os.Stderr, msg)
	t.Skip(msg)
	return ""
}

// RepoFile returns the path of rel in the repository holding the working
// directory.
func RepoFile(t testing.TB, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("%s not found above the working directory", rel)
		}
		dir = parent
	}
}

// Params replace the committed file's addresses and paths.
type Params struct {
	// Upstreams are the replicas, host:port, in place of replica-N:50051.
	Upstreams []string
	// TLS, H2C and HTTP1 are the listen addresses in place of 8443, 8080
	// and 8081.
	TLS, H2C, HTTP1 string
	// Dir holds the certificate (tls.crt, tls.key) and the access log.
	Dir string
}

var (
	upstreamLine = regexp.MustCompile(`(?m)^(\s*)server replica-\d+:50051(.*)$`)
	listenLine   = regexp.MustCompile(`(?m)^(\s*)listen (8443|8080|8081)\b`)
)

// Render returns conf with p's addresses and paths, and fails if the
// committed file no longer has the lines it replaces.
func Render(conf string, p Params) (string, error) {
	if n := strings.Count(conf, "server replica-1:50051"); n != 2 {
		return "", fmt.Errorf("%s: %d upstream lines for replica-1:50051, want one in each of 2 pools", ConfigPath, n)
	}
	// Each pool lists replica-1, replica-2...: replica-1's line becomes
	// one line per upstream, with its parameters; the others go.
	conf = upstreamLine.ReplaceAllStringFunc(conf, func(line string) string {
		m := upstreamLine.FindStringSubmatch(line)
		if strings.Fields(line)[1] != "replica-1:50051" {
			return ""
		}
		lines := make([]string, len(p.Upstreams))
		for i, u := range p.Upstreams {
			lines[i] = m[1] + "server " + u + m[2]
		}
		return strings.Join(lines, "\n")
	})
	listens := map[string]string{"8443": p.TLS, "8080": p.H2C, "8081": p.HTTP1}
	if n := len(listenLine.FindAllString(conf, -1)); n != 3 {
		return "", fmt.Errorf("%s: %d listen lines on 8443, 8080 and 8081, want 3", ConfigPath, n)
	}
	conf = listenLine.ReplaceAllStringFunc(conf, func(line string) string {
		m := listenLine.FindStringSubmatch(line)
		return m[1] + "listen " + listens[m[2]]
	})
	for _, r := range [][2]string{{"/etc/nginx/tls/", p.Dir + "/"}, {"/var/log/nginx/", p.Dir + "/"}} {
		if !strings.Contains(conf, r[0]) {
			return "", fmt.Errorf("%s: no %s to replace", ConfigPath, r[0])
		}
		conf = strings.ReplaceAll(conf, r[0], r[1])
	}
	return conf, nil
}

// mainConfig is the nginx.conf around the rendered file: every path in dir.
func mainConfig(dir string) (string, error) {
	var b strings.Builder
	if os.Geteuid() == 0 {
		// As root nginx would run its workers as nobody, who cannot use
		// the private directory: keep them the current user.
		u, err := user.Current()
		if err != nil {
			return "", err
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "user %s %s;\n", u.Username, g.Name)
	}
	fmt.Fprintf(&b, `daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 1024; }
http {
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[1]s/switchyard.conf;
}
`, dir)
	return b.String(), nil
}

// Proxy is a running nginx in front of the test's replicas.
type Proxy struct {
	// TLS, H2C and HTTP1 are the listeners' addresses (see Params).
	TLS, H2C, HTTP1 string
	// CertPEM is the TLS listener's self-signed certificate.
	CertPEM []byte
	Dir     string

	cmd  *exec.Cmd
	done chan struct{}
	out  bytes.Buffer
}

// Prepare writes the rendered configuration for upstreams into a new
// temporary directory and returns nginx's command line arguments (-p, -c,
// -e) with the proxy to be started.
func Prepare(t testing.TB, upstreams []string) (*Proxy, []string) {
	t.Helper()
	dir := t.TempDir()
	p := &Proxy{Dir: dir, TLS: freeAddr(t), H2C: freeAddr(t), HTTP1: freeAddr(t), done: make(chan struct{})}
	certPEM, keyPEM := testserver.SelfSignedCert(t)
	p.CertPEM = certPEM
	committed, err := os.ReadFile(RepoFile(t, ConfigPath))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := Render(string(committed), Params{Upstreams: upstreams, TLS: p.TLS, H2C: p.H2C, HTTP1: p.HTTP1, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	main, err := mainConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "switchyard.conf": []byte(conf), "nginx.conf": []byte(main)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p, []string{"-p", dir + "/", "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log")}
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// Start runs nginx in front of upstreams until the test ends.
func Start(t testing.TB, upstreams []string) *Proxy {
	t.Helper()
	bin := Require(t)
	p, args := Prepare(t, upstreams)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	// Should the test binary die, nginx's master ends its workers and
	// itself on SIGTERM.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("nginx error log:\n%s", p.File("error.log"))
		}
	})
	for _, addr := range []string{p.TLS, p.H2C, p.HTTP1} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.Close()
				break
			}
			select {
			case <-p.done:
				t.Fatalf("nginx exited: %s\n%s", p.out.String(), p.File("error.log"))
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("nginx does not listen on %s: %v\n%s", addr, err, p.File("error.log"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return p
}

// File returns the content of one of the proxy's files (error.log,
// switchyard.access.log), or "".
func (p *Proxy) File(name string) string {
	data, _ := os.ReadFile(filepath.Join(p.Dir, name))
	return string(data)
}
