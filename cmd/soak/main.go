// Command soak runs a bounded load test against a real switchyard process:
// many concurrent clients, each on its own HTTP/2 connection, call every
// method in gRPC, gRPC-Web and Connect (binary and JSON), check every
// response, and the run reports calls, errors, latency percentiles and the
// server's resident memory over time. It fails (exit 1) on any error, on
// memory that keeps growing, or on an unclean drain at the end.
//
//	go run ./cmd/soak -binary bin/switchyard -duration 3m -clients 32
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	greeterv1 "github.com/switchyard/switchyard/gen/greeter/v1"
	"github.com/switchyard/switchyard/gen/greeter/v1/greeterv1connect"
	keywordsv1 "github.com/switchyard/switchyard/gen/keywords/v1"
	"github.com/switchyard/switchyard/gen/keywords/v1/keywordsv1connect"
	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	summatorv1 "github.com/switchyard/switchyard/gen/summator/v1"
	"github.com/switchyard/switchyard/gen/summator/v1/summatorv1connect"
	teamsv1 "github.com/switchyard/switchyard/gen/teams/v1"
	"github.com/switchyard/switchyard/gen/teams/v1/teamsv1connect"
	"github.com/switchyard/switchyard/internal/testserver"
)

const adminToken = "soak-admin-token"

func main() {
	binary := flag.String("binary", "bin/switchyard", "switchyard binary to start")
	duration := flag.Duration("duration", 3*time.Minute, "how long to send traffic")
	clients := flag.Int("clients", 32, "concurrent clients, each with its own connection")
	sample := flag.Duration("sample", 0, "RSS sampling interval (default: duration/24, at least 1s)")
	flag.Parse()
	if *sample <= 0 {
		*sample = max(time.Second, *duration/24)
	}
	if err := run(*binary, *duration, *clients, *sample); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// server is the switchyard process under test.
type server struct {
	cmd       *exec.Cmd
	url       string
	dataDir   string
	errorLogs atomic.Int64 // ERROR lines: panics, unclassified errors
	firstErr  atomic.Value
	exited    chan error
}

func startServer(binary string) (*server, error) {
	// The soak writes teams: give it a team directory of its own, never the
	// user's, and never a PostgreSQL DSN from the environment.
	dataDir, err := os.MkdirTemp("", "switchyard-soak-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "-addr", "127.0.0.1:0", "-log-format", "json", "-shutdown-grace", "10s", "-data-dir", dataDir)
	// XDG_DATA_HOME below /dev/null: had -data-dir been left out, the server
	// would fail at once rather than use the user's directory.
	cmd.Env = append(os.Environ(), "SWITCHYARD_ADMIN_TOKEN="+adminToken, "SWITCHYARD_POSTGRES_DSN=",
		"XDG_DATA_HOME=/dev/null/soak-passes-data-dir")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		_ = os.RemoveAll(dataDir)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dataDir)
		return nil, err
	}
	s := &server{cmd: cmd, dataDir: dataDir, exited: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var rec struct {
				Level string `json:"level"`
				Msg   string `json:"msg"`
				Addr  string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				continue
			}
			switch {
			case rec.Msg == "switchyard serving":
				addr <- rec.Addr
			case rec.Level == "ERROR":
				if s.errorLogs.Add(1) == 1 {
					s.firstErr.Store(sc.Text())
				}
			}
		}
		s.exited <- cmd.Wait()
	}()
	select {
	case a := <-addr:
		s.url = "http://" + a
		return s, nil
	case err := <-s.exited:
		return nil, fmt.Errorf("switchyard exited at start: %v", err)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, errors.New("switchyard did not start within 30s")
	}
}

// rssKiB is the process's resident set size from /proc.
func rssKiB(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	return -1
}

type protocol struct {
	name string
	opts []connect.ClientOption
}

var protocols = []protocol{
	{"connect", nil},
	{"connect+json", []connect.ClientOption{connect.WithProtoJSON()}},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}},
}

// client is one simulated user: its own connection, clients for every
// service in one protocol per call.
type client struct {
	id       int
	teams    []teamsv1connect.TeamsServiceClient
	greeter  []greeterv1connect.GreeterServiceClient
	route    []routeguidev1connect.RouteGuideServiceClient
	keywords []keywordsv1connect.KeywordsServiceClient
	summator []summatorv1connect.SummatorServiceClient
	health   []*connect.Client[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse]
}

func newClient(id int, hc *http.Client, url string) *client {
	c := &client{id: id}
	for _, p := range protocols {
		c.teams = append(c.teams, teamsv1connect.NewTeamsServiceClient(hc, url, p.opts...))
		c.greeter = append(c.greeter, greeterv1connect.NewGreeterServiceClient(hc, url, p.opts...))
		c.route = append(c.route, routeguidev1connect.NewRouteGuideServiceClient(hc, url, p.opts...))
		c.keywords = append(c.keywords, keywordsv1connect.NewKeywordsServiceClient(hc, url, p.opts...))
		c.summator = append(c.summator, summatorv1connect.NewSummatorServiceClient(hc, url, p.opts...))
		c.health = append(c.health, connect.NewClient[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse](
			hc, url+"/grpc.health.v1.Health/Check", p.opts...))
	}
	return c
}

// op is one checked call; it returns nil when the answer is the expected one.
type op struct {
	name string
	call func(ctx context.Context, c *client, p, iter int) error
}

func expect(cond bool, format string, args ...any) error {
	if cond {
		return nil
	}
	return fmt.Errorf(format, args...)
}

func wantCode(err error, code connect.Code) error {
	return expect(connect.CodeOf(err) == code, "got %v, want %v", err, code)
}

var ops = []op{
	{"GetTeam", func(ctx context.Context, c *client, p, _ int) error {
		res, err := c.teams[p].GetTeam(ctx, connect.NewRequest(&teamsv1.GetTeamRequest{City: "Chicago"}))
		if err != nil {
			return err
		}
		return expect(res.Msg.GetNickname() == "Jackals", "GetTeam(Chicago) = %v", res.Msg)
	}},
	{"GetTeam/not_found", func(ctx context.Context, c *client, p, _ int) error {
		_, err := c.teams[p].GetTeam(ctx, connect.NewRequest(&teamsv1.GetTeamRequest{City: "Atlantis"}))
		return wantCode(err, connect.CodeNotFound)
	}},
	{"ListTeams", func(ctx context.Context, c *client, p, _ int) error {
		s, err := c.teams[p].ListTeams(ctx, connect.NewRequest(&teamsv1.ListTeamsRequest{CityPrefix: "s"}))
		if err != nil {
			return err
		}
		var cities []string
		for s.Receive() {
			cities = append(cities, s.Msg().GetCity())
		}
		if err := s.Err(); err != nil {
			return err
		}
		return expect(slices.Equal(cities, []string{"San Francisco", "Seattle"}), "ListTeams(s) = %q", cities)
	}},
	{"PutTeam+DeleteTeam", func(ctx context.Context, c *client, p, iter int) error {
		city := fmt.Sprintf("Zz Soak %d-%d", c.id, iter) // outside ListTeams' prefix "s"
		put := connect.NewRequest(&teamsv1.PutTeamRequest{City: city, Nickname: "Testers"})
		put.Header().Set("Authorization", "Bearer "+adminToken)
		res, err := c.teams[p].PutTeam(ctx, put)
		if err != nil {
			return err
		}
		if !res.Msg.GetCreated() {
			return fmt.Errorf("PutTeam(%s) did not create", city)
		}
		del := connect.NewRequest(&teamsv1.DeleteTeamRequest{City: city})
		del.Header().Set("Authorization", "Bearer "+adminToken)
		if _, err := c.teams[p].DeleteTeam(ctx, del); err != nil {
			return err
		}
		_, err = c.teams[p].GetTeam(ctx, connect.NewRequest(&teamsv1.GetTeamRequest{City: city}))
		return wantCode(err, connect.CodeNotFound)
	}},
	{"SayHello", func(ctx context.Context, c *client, p, iter int) error {
		name := fmt.Sprintf("client %d call %d", c.id, iter)
		res, err := c.greeter[p].SayHello(ctx, connect.NewRequest(&greeterv1.SayHelloRequest{Name: name}))
		if err != nil {
			return err
		}
		return expect(res.Msg.GetMessage() == "Hello, "+name+"!", "SayHello = %q", res.Msg.GetMessage())
	}},
	{"SayHelloAgain", func(ctx context.Context, c *client, p, _ int) error {
		res, err := c.greeter[p].SayHelloAgain(ctx, connect.NewRequest(&greeterv1.SayHelloAgainRequest{Name: "soak"}))
		if err != nil {
			return err
		}
		return expect(res.Msg.GetMessage() == "Hello again, soak!", "SayHelloAgain = %q", res.Msg.GetMessage())
	}},
	{"GetFeature", func(ctx context.Context, c *client, p, _ int) error {
		res, err := c.route[p].GetFeature(ctx, connect.NewRequest(&routeguidev1.GetFeatureRequest{Latitude: 409146138, Longitude: -746188906}))
		if err != nil {
			return err
		}
		return expect(res.Msg.GetName() == "Berkshire Valley Management Area Trail, Jefferson, NJ, USA", "GetFeature = %v", res.Msg)
	}},
	{"ListFeatures", func(ctx context.Context, c *client, p, _ int) error {
		s, err := c.route[p].ListFeatures(ctx, connect.NewRequest(&routeguidev1.ListFeaturesRequest{
			Lo: &routeguidev1.Point{Latitude: 420000000, Longitude: -730000000}, // swapped corners are fine
			Hi: &routeguidev1.Point{Latitude: 400000000, Longitude: -750000000},
		}))
		if err != nil {
			return err
		}
		total, named := 0, 0
		for s.Receive() {
			total++
			if s.Msg().GetName() != "" {
				named++
			}
		}
		if err := s.Err(); err != nil {
			return err
		}
		return expect(total == 100 && named == 64, "ListFeatures = %d (%d named)", total, named)
	}},
	{"RecordRoute", func(ctx context.Context, c *client, p, _ int) error {
		s := c.route[p].RecordRoute(ctx)
		for i := range int32(10) {
			if err := s.Send(&routeguidev1.RecordRouteRequest{Latitude: 407838351, Longitude: -746143763 + i*1000}); err != nil {
				return err
			}
		}
		res, err := s.CloseAndReceive()
		if err != nil {
			return err
		}
		return expect(res.Msg.GetPointCount() == 10 && res.Msg.GetFeatureCount() == 1 && res.Msg.GetDistance() > 0,
			"RecordRoute = %v", res.Msg)
	}},
	{"RouteChat", func(ctx context.Context, c *client, p, iter int) error {
		// A new location every time: the server's note store fills up to
		// its bound and then evicts, which is what the RSS plateau shows.
		loc := &routeguidev1.Point{Latitude: int32(c.id), Longitude: int32(iter)}
		s := c.route[p].RouteChat(ctx)
		defer s.CloseResponse()
		for i := range 3 {
			if err := s.Send(&routeguidev1.RouteChatRequest{Location: loc, Message: strconv.Itoa(i)}); err != nil {
				return err
			}
			for j := range i + 1 {
				n, err := s.Receive()
				if err != nil {
					return err
				}
				if n.GetMessage() != strconv.Itoa(j) {
					return fmt.Errorf("RouteChat reply %d to note %d = %q", j, i, n.GetMessage())
				}
			}
		}
		if err := s.CloseRequest(); err != nil {
			return err
		}
		_, err := s.Receive()
		return expect(errors.Is(err, io.EOF), "RouteChat end = %v", err)
	}},
	{"GetKeywords", func(ctx context.Context, c *client, p, _ int) error {
		res, err := c.keywords[p].GetKeywords(ctx, connect.NewRequest(&keywordsv1.GetKeywordsRequest{Text: "The quick brown fox, and the lazy dog!"}))
		if err != nil {
			return err
		}
		return expect(slices.Equal(res.Msg.GetKeywords(), []string{"quick", "brown", "fox", "lazy", "dog"}), "GetKeywords = %q", res.Msg.GetKeywords())
	}},
	{"Sum", func(ctx context.Context, c *client, p, iter int) error {
		a := float32(iter % 1000)
		res, err := c.summator[p].Sum(ctx, connect.NewRequest(&summatorv1.SumRequest{Value1: a, Value2: 0.5}))
		if err != nil {
			return err
		}
		return expect(res.Msg.GetValue() == a+0.5, "Sum(%v, 0.5) = %v", a, res.Msg.GetValue())
	}},
	{"Sum/NaN", func(ctx context.Context, c *client, p, _ int) error {
		_, err := c.summator[p].Sum(ctx, connect.NewRequest(&summatorv1.SumRequest{Value1: float32(math.NaN())}))
		return wantCode(err, connect.CodeInvalidArgument)
	}},
	{"Health", func(ctx context.Context, c *client, p, _ int) error {
		if protocols[p].name == "connect+json" {
			// grpchealth's JSON names the enum SERVING_STATUS_SERVING, which
			// grpc-go's health types do not know; health checks are binary.
			p = 0
		}
		res, err := c.health[p].CallUnary(ctx, connect.NewRequest(&healthpb.HealthCheckRequest{}))
		if err != nil {
			return err
		}
		return expect(res.Msg.GetStatus() == healthpb.HealthCheckResponse_SERVING, "health = %v", res.Msg.GetStatus())
	}},
}

// result is what one client recorded.
type result struct {
	latencies map[string][]time.Duration // by op name
	calls     int
	errors    int
	firstErrs []string
}

func worker(ctx context.Context, id int, url string, out *result, calls *atomic.Int64) {
	hc := testserver.NewH2CClient()
	defer hc.CloseIdleConnections()
	c := newClient(id, hc, url)
	rng := rand.New(rand.NewPCG(uint64(id), 42))
	out.latencies = map[string][]time.Duration{}
	for iter := 0; ctx.Err() == nil; iter++ {
		o := ops[rng.IntN(len(ops))]
		p := rng.IntN(len(protocols))
		callCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		err := o.call(callCtx, c, p, iter)
		d := time.Since(start)
		cancel()
		out.calls++
		calls.Add(1)
		if err != nil {
			out.errors++
			if len(out.firstErrs) < 5 {
				out.firstErrs = append(out.firstErrs, fmt.Sprintf("client %d %s over %s: %v", id, o.name, protocols[p].name, err))
			}
			continue
		}
		out.latencies[o.name] = append(out.latencies[o.name], d)
	}
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func run(binary string, duration time.Duration, clients int, sample time.Duration) error {
	srv, err := startServer(binary)
	if err != nil {
		return err
	}
	defer func() {
		_ = srv.cmd.Process.Kill()
		_ = os.RemoveAll(srv.dataDir)
	}()
	pid := srv.cmd.Process.Pid
	host, _ := os.Hostname()
	fmt.Printf("# switchyard soak\n\n")
	fmt.Printf("- started %s on %s (%d CPUs, %s/%s); shared machine: other jobs may run at the same time\n",
		time.Now().UTC().Format(time.RFC3339), host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	fmt.Printf("- %d clients (one HTTP/2 connection each), %v, %d operations x %d protocols, server %s (pid %d)\n\n",
		clients, duration, len(ops), len(protocols), srv.url, pid)

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var calls atomic.Int64
	results := make([]result, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() { worker(ctx, i, srv.url, &results[i], &calls) })
	}

	type rssSample struct {
		at    time.Duration
		calls int64
		kib   int64
	}
	var samples []rssSample
	start := time.Now()
	fmt.Println("| elapsed | calls | calls/s | server RSS (MiB) |")
	fmt.Println("|---:|---:|---:|---:|")
	tick := time.NewTicker(sample)
	last := int64(0)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		}
		s := rssSample{at: time.Since(start).Round(time.Second), calls: calls.Load(), kib: rssKiB(pid)}
		if n := len(samples); n > 0 && samples[n-1].at == s.at {
			continue // the end fell on a tick
		}
		samples = append(samples, s)
		fmt.Printf("| %v | %d | %.0f | %.1f |\n", s.at, s.calls, float64(s.calls-last)/sample.Seconds(), float64(s.kib)/1024)
		last = s.calls
	}
	tick.Stop()
	wg.Wait()

	// Totals and latency.
	total, errs := 0, 0
	byOp := map[string][]time.Duration{}
	var all []time.Duration
	var firstErrs []string
	for _, r := range results {
		total += r.calls
		errs += r.errors
		firstErrs = append(firstErrs, r.firstErrs...)
		for name, ls := range r.latencies {
			byOp[name] = append(byOp[name], ls...)
			all = append(all, ls...)
		}
	}
	slices.Sort(all)
	fmt.Printf("\n| operation | calls | p50 | p99 |\n|---|---:|---:|---:|\n")
	for _, o := range ops {
		ls := byOp[o.name]
		slices.Sort(ls)
		fmt.Printf("| %s | %d | %v | %v |\n", o.name, len(ls), percentile(ls, 0.5).Round(time.Microsecond), percentile(ls, 0.99).Round(time.Microsecond))
	}
	elapsed := time.Since(start)
	fmt.Printf("| **all** | %d | %v | %v |\n\n", total, percentile(all, 0.5).Round(time.Microsecond), percentile(all, 0.99).Round(time.Microsecond))
	fmt.Printf("- calls: %d (%.0f/s), errors: %d, server ERROR log lines: %d\n", total, float64(total)/elapsed.Seconds(), errs, srv.errorLogs.Load())

	var failures []string
	if errs > 0 {
		failures = append(failures, fmt.Sprintf("%d calls failed, first: %s", errs, strings.Join(firstErrs[:min(5, len(firstErrs))], "; ")))
	}
	if n := srv.errorLogs.Load(); n > 0 {
		failures = append(failures, fmt.Sprintf("%d ERROR lines in the server log, first: %v", n, srv.firstErr.Load()))
	}
	if total == 0 {
		failures = append(failures, "no calls were made")
	}
	if msg := plateau(samples, func(s rssSample) int64 { return s.kib }); msg != "" {
		failures = append(failures, msg)
	} else {
		fmt.Printf("- RSS plateaued (after warm-up the second half never exceeds the first half's peak by more than 20%% or 16 MiB)\n")
	}

	// A drain under the traffic's aftermath must be clean.
	drainStart := time.Now()
	_ = srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-srv.exited:
		if err != nil {
			failures = append(failures, fmt.Sprintf("switchyard exited with %v after SIGTERM", err))
		} else {
			fmt.Printf("- SIGTERM: switchyard drained and exited 0 in %v\n", time.Since(drainStart).Round(time.Millisecond))
		}
	case <-time.After(15 * time.Second):
		failures = append(failures, "switchyard did not exit within 15s of SIGTERM")
	}
	if len(failures) > 0 {
		for _, f := range failures {
			fmt.Println("- FAIL:", f)
		}
		return errors.New(strings.Join(failures, "\n"))
	}
	fmt.Println("- PASS")
	return nil
}

// plateau checks that memory stops growing: samples after the first third
// (warm-up) are split in two halves, and the later half's peak may exceed
// the earlier half's by at most 20% or 16 MiB, whichever is larger.
func plateau[S any](samples []S, kib func(S) int64) string {
	steady := samples[len(samples)/3:]
	if len(steady) < 2 {
		return ""
	}
	peak := func(ss []S) int64 {
		var m int64
		for _, s := range ss {
			m = max(m, kib(s))
		}
		return m
	}
	a, b := peak(steady[:len(steady)/2]), peak(steady[len(steady)/2:])
	if allowed := max(a/5, 16<<10); b-a > allowed {
		return fmt.Sprintf("RSS still growing: peak %d KiB after %d KiB (allowed growth %d KiB)", b, a, allowed)
	}
	return ""
}
