package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/services/routeguide"
	"github.com/switchyard/switchyard/services/teams"
)

// childEnv makes the test binary act as loadgen itself, so the writer
// process a run starts (os.Executable) is this binary running realMain.
const childEnv = "LOADGEN_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const adminToken = "test-admin-token"

// startSwitchyard serves the tutorial teams (in memory, writable with
// adminToken) and the default route database, over h2c or TLS.
func startSwitchyard(t *testing.T, useTLS bool, cfg server.Config) *testserver.Server {
	t.Helper()
	if cfg.Teams == nil {
		cfg.Teams = teams.NewMemStore(teams.TutorialTeams)
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = adminToken
	}
	if cfg.Logger == nil {
		// Not t.Log, testserver's default: the per-call line is written
		// after the response, and a sink that slow keeps handlers running
		// after their streams ended, which internal/h2 counts against the
		// stream limit (refusing streams, then ENHANCE_YOUR_CALM) though
		// the client keeps far fewer open. These tests are about the
		// load generator.
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return testserver.StartWith(t, cfg, testserver.Options{TLS: useTLS})
}

func tokenFile(t *testing.T, token string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// short are options for a run of a fraction of a second.
func short(addr, name string) options {
	return options{addr: addr, workload: name, conns: 2, conc: 8, warm: 50 * time.Millisecond, dur: 300 * time.Millisecond,
		params: params{per: 20, seed: 1}}
}

func runOnce(t *testing.T, o options, d dialer) (Result, error) {
	t.Helper()
	var stderr bytes.Buffer
	res, err := run(o, d, workloads[o.workload], &stderr)
	if stderr.Len() > 0 {
		t.Logf("stderr: %s", stderr.String())
	}
	return res, err
}

// Every workload passes its checks against Switchyard over several
// connections, and counts what it should; the unary ones in gRPC-Web and
// Connect too.
func TestWorkloadsPassAgainstSwitchyard(t *testing.T) {
	srv := startSwitchyard(t, false, server.Config{})
	for i, name := range workloadNames() {
		for _, p := range protocols {
			if p != protoGRPC && !unaryWorkloads[name] {
				continue
			}
			t.Run(name+"/"+string(p), func(t *testing.T) {
				o := short(srv.Addr, name)
				o.proto = string(p)
				o.params.seed = i + 1 // RouteChat locations of one seed are used once per server
				res, err := runOnce(t, o, dialer{addr: srv.Addr})
				if err != nil || res.Errors > 0 {
					t.Fatalf("run: %v; %d errors, first: %s", err, res.Errors, res.FirstErr)
				}
				if res.Calls == 0 || res.CallsAll < res.Calls || res.Conns != 2 || res.Protocol != string(p) {
					t.Fatalf("calls %d of %d on %d connections, protocol %q", res.Calls, res.CallsAll, res.Conns, res.Protocol)
				}
				perCall := 1
				switch {
				case strings.HasSuffix(name, "listfeatures"):
					perCall = routeguide.DefaultDB().Len()
				case strings.HasSuffix(name, "recordroute"), strings.HasSuffix(name, "routechat"):
					perCall = o.params.per
				}
				if res.Msgs != res.Calls*perCall {
					t.Errorf("msgs %d, want %d calls × %d", res.Msgs, res.Calls, perCall)
				}
				if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 || res.ClientCPU <= 0 {
					t.Errorf("p50 %v p99 %v max %v client CPU %v", res.P50, res.P99, res.Max, res.ClientCPU)
				}
			})
		}
	}
}

// -protocol names one of three, and only the unary workloads take
// gRPC-Web or Connect.
func TestProtocolFlag(t *testing.T) {
	for _, args := range [][]string{
		{"-addr", "127.0.0.1:1", "-protocol", "grpc-web"},
		{"-addr", "127.0.0.1:1", "-protocol", "connect", "-workload", "listfeatures"},
		{"-addr", "127.0.0.1:1", "-protocol", "grpcweb", "-workload", "routechat"},
	} {
		var stdout, stderr bytes.Buffer
		if code := realMain(args, nil, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "-protocol") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a word on -protocol", args, code, stderr.String())
		}
	}
}

// The GetTeam mix — unknown cities and a writer process renaming teams —
// passes every check over h2c and TLS, and the writes reach the reads.
func TestGetTeamMixWithWriter(t *testing.T) {
	t.Setenv(childEnv, "1")
	tok := tokenFile(t, adminToken)
	for _, useTLS := range []bool{false, true} {
		for _, name := range []string{"getteam", "legacygetteam"} {
			t.Run(fmtBool(name, useTLS), func(t *testing.T) {
				srv := startSwitchyard(t, useTLS, server.Config{})
				o := short(srv.Addr, name)
				o.dur = 600 * time.Millisecond
				o.params.unknown, o.writeShare, o.tokenFile = 0.2, 0.02, tok
				d := dialer{addr: srv.Addr}
				if useTLS {
					o.tls, o.insecure = true, true
					d.tls = &tls.Config{NextProtos: []string{"h2"}, RootCAs: srv.CertPool, ServerName: "127.0.0.1"}
				}
				res, err := runOnce(t, o, d)
				if err != nil || res.Errors > 0 {
					t.Fatalf("run: %v; %d errors, first: %s", err, res.Errors, res.FirstErr)
				}
				w := res.Writer
				if w == nil || w.WritesAll == 0 || w.Errors > 0 || w.Target == 0 {
					t.Fatalf("writer: %+v", w)
				}
				// The writer follows the read rate: never more than asked.
				if w.WritesAll > w.Target {
					t.Errorf("writer made %d writes, asked for %d", w.WritesAll, w.Target)
				}
				if res.WritesSeen == 0 {
					t.Errorf("%d writes, none seen by %d reads", w.WritesAll, res.CallsAll)
				}
			})
		}
	}
}

func fmtBool(name string, useTLS bool) string {
	if useTLS {
		return name + "/tls"
	}
	return name + "/h2c"
}

// The unknown share is exact over any run of calls: 1 in 10 here.
func TestUnknownShare(t *testing.T) {
	w := getTeam(false, params{unknown: 0.1})
	unknown := 0
	for range 1000 {
		var req teamsv1.GetTeamRequest
		msgs, err := messages(w.next().body)
		if err != nil || len(msgs) != 1 {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(msgs[0], &req); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(UnknownCities, req.GetCity()) {
			unknown++
		}
	}
	if unknown != 100 {
		t.Errorf("%d of 1000 calls asked for an unknown city, want 100", unknown)
	}
}

// A server that answers wrongly — fast errors, an OK where NOT_FOUND is
// due, a nickname nobody wrote, other features — fails the checks, and
// no failed call is counted as a call served.
func TestFailedChecksAreNotCounted(t *testing.T) {
	// The same points, every one named otherwise.
	renamed := slices.Clone(routeguide.DefaultDB().Features())
	for i := range renamed {
		renamed[i].Name = fmt.Sprintf("renamed %d", i)
	}
	js, err := json.Marshal(renamed)
	if err != nil {
		t.Fatal(err)
	}
	otherNames, err := routeguide.ParseDB(js)
	if err != nil {
		t.Fatal(err)
	}
	var members []teams.Team
	for _, city := range UnknownCities {
		members = append(members, teams.Team{City: city, Nickname: "Strangers"})
	}
	for _, tc := range []struct {
		name     string
		workload string
		unknown  float64
		cfg      server.Config
		want     string // in the first error
	}{
		{"every city NOT_FOUND", "getteam", 0, server.Config{Teams: teams.NewMemStore(nil)}, "grpc-status 5"},
		{"unknown city answered OK", "getteam", 1, server.Config{Teams: teams.NewMemStore(members)}, "grpc-status 0"},
		{"unknown city is a member", "legacygetteam", 1, server.Config{Teams: teams.NewMemStore(members)}, "response body differs"},
		{"nickname nobody wrote", "legacygetteam", 0, server.Config{Teams: teams.NewMemStore([]teams.Team{{City: "Chicago", Nickname: "Bears"}})}, "none of the 3 accepted answers"},
		{"other features", "listfeatures", 0, server.Config{RouteDB: otherNames}, "response body differs"},
		{"other feature at a point", "getfeature", 0, server.Config{RouteDB: otherNames}, "response body differs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startSwitchyard(t, false, tc.cfg)
			for _, p := range protocols {
				if p != protoGRPC && !unaryWorkloads[tc.workload] {
					continue
				}
				o := short(srv.Addr, tc.workload)
				o.params.unknown = tc.unknown
				o.proto = string(p)
				res, err := runOnce(t, o, dialer{addr: srv.Addr})
				if err != nil {
					t.Fatalf("%s: run: %v", p, err)
				}
				if res.Errors == 0 || !strings.Contains(res.FirstErr, tc.want) {
					t.Fatalf("%s: %d errors, first %q; want one with %q", p, res.Errors, res.FirstErr, tc.want)
				}
				if res.Calls != 0 || res.CallsAll == 0 {
					t.Errorf("%s: %d failed calls counted as served (%d completed)", p, res.Calls, res.CallsAll)
				}
			}
			// The process says so too.
			var stdout, stderr bytes.Buffer
			args := []string{"-addr", srv.Addr, "-workload", tc.workload, "-unknown", fmtFloat(tc.unknown), "-warmup", "10ms", "-d", "100ms", "-conns", "2"}
			if code := realMain(args, nil, &stdout, &stderr); code != 1 {
				t.Errorf("exit code %d, want 1; %s", code, stderr.String())
			}
			var r Result
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || r.Errors == 0 {
				t.Errorf("printed %q (%v)", stdout.String(), err)
			}
		})
	}
}

func fmtFloat(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

// The writer needs the admin token: with a wrong one every PutTeam fails
// its check and the run fails.
func TestWriterWithoutTheTokenFails(t *testing.T) {
	t.Setenv(childEnv, "1")
	srv := startSwitchyard(t, false, server.Config{})
	o := short(srv.Addr, "getteam")
	o.writeShare, o.tokenFile = 0.05, tokenFile(t, "not-the-token")
	res, err := runOnce(t, o, dialer{addr: srv.Addr})
	if err == nil || !strings.Contains(err.Error(), "grpc-status 16") {
		t.Fatalf("run error %v, want the writer's UNAUTHENTICATED", err)
	}
	if res.Writer == nil || res.Writer.Errors == 0 || res.Writer.WritesAll != 0 {
		t.Errorf("writer: %+v", res.Writer)
	}
}

// Reads that never see any of many acknowledged writes fail the run.
func TestUnseenWritesFail(t *testing.T) {
	res := Result{Writer: &WriterResult{WritesAll: 50}}
	checkWritesSeen(&res)
	if res.Errors != 1 || !strings.Contains(res.FirstErr, "never seen") {
		t.Errorf("%d errors, first %q", res.Errors, res.FirstErr)
	}
	res = Result{WritesSeen: 1, Writer: &WriterResult{WritesAll: 50}}
	if checkWritesSeen(&res); res.Errors != 0 {
		t.Errorf("errors %d with a write seen", res.Errors)
	}
}

// TLS: trusting the server's certificate (or skipping verification)
// works; an untrusted certificate or cleartext against TLS fails.
func TestTLS(t *testing.T) {
	srv := startSwitchyard(t, true, server.Config{})
	otherCert, _ := testserver.SelfSignedCert(t)
	other := filepath.Join(t.TempDir(), "other.pem")
	if err := os.WriteFile(other, otherCert, 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"-addr", srv.Addr, "-workload", "getfeature", "-warmup", "10ms", "-d", "100ms"}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-tls", "-insecure"}, 0, ""},
		{[]string{"-tls", "-cacert", other}, 1, "certificate"},
		{[]string{"-tls"}, 1, "certificate"},
		{nil, 1, ""},
	} {
		var stdout, stderr bytes.Buffer
		code := realMain(append(slices.Clone(base), tc.args...), nil, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
		if tc.code == 0 {
			var r Result
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || r.Calls == 0 || r.Errors != 0 {
				t.Errorf("%v: %q", tc.args, stdout.String())
			}
		}
	}
	// A pool-based config, as the test above uses, verifies too.
	d := dialer{addr: srv.Addr, tls: &tls.Config{NextProtos: []string{"h2"}, RootCAs: srv.CertPool, ServerName: "127.0.0.1"}}
	c, err := d.dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// Percentiles from the histogram are within 1% of the exact ones.
func TestHistogramPercentiles(t *testing.T) {
	var h histogram
	var all []time.Duration
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		d := time.Duration(r.ExpFloat64() * float64(2*time.Millisecond))
		h.record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, p := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := ms(all[int(float64(len(all))*p)])
		got := h.percentile(p)
		if got < exact*0.99 || got > exact*1.01 {
			t.Errorf("p%v: %v ms, exact %v ms", p*100, got, exact)
		}
	}
	if h.percentile(1) != ms(all[len(all)-1]) {
		t.Errorf("max %v, want %v", h.percentile(1), ms(all[len(all)-1]))
	}
	var merged histogram
	merged.add(&h)
	merged.add(&h)
	if merged.n != 2*h.n || merged.percentile(0.5) != h.percentile(0.5) {
		t.Errorf("merged: n %d, p50 %v", merged.n, merged.percentile(0.5))
	}
}
