// Command loadgen is a lean gRPC load generator (and, for unary calls,
// gRPC-Web and Connect: -protocol). Each of its -conns HTTP/2
// connections (h2c, or TLS with ALPN h2) is driven by one goroutine over
// golang.org/x/net/http2's Framer with -c calls in flight, so the client
// costs far less CPU per call than a server and cannot cap the
// measurement; it reports its own CPU per call to show it. It checks every
// response — HTTP status, content type, grpc-status and message, and the
// exact response bytes — and counts a call only when its check passed.
//
// With -write-share, a second process (this binary, -writer) issues
// PutTeam with the admin token at that share of the read rate against the
// same server, setting nicknames the readers' checks accept; reads and
// writes are reported separately. One JSON result goes to stdout.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Result is what one run prints on stdout.
type Result struct {
	Workload  string  `json:"workload"`
	Protocol  string  `json:"protocol"`
	Conns     int     `json:"conns"`
	Conc      int     `json:"conc"`        // calls in flight per connection
	Calls     int     `json:"calls"`       // checked calls completed inside the measured window
	Msgs      int     `json:"msgs"`        // messages of those calls (see workload)
	Seconds   float64 `json:"seconds"`     // measured window
	CallsAll  int     `json:"calls_all"`   // completed in total, warm-up and failures included
	P50       float64 `json:"p50_ms"`      // call latency
	P90       float64 `json:"p90_ms"`      // call latency
	P95       float64 `json:"p95_ms"`      // call latency
	P99       float64 `json:"p99_ms"`      // call latency
	P999      float64 `json:"p999_ms"`     // call latency
	Max       float64 `json:"max_ms"`      // call latency
	Errors    int     `json:"errors"`      // failed checks; any makes the run invalid
	FirstErr  string  `json:"first_error"` // the first failed check
	Unknown   float64 `json:"unknown_share,omitempty"`
	ClientCPU float64 `json:"client_cpu_us_per_call"` // this process's user+system time per call (calls_all)
	// Refused counts streams the server refused (REFUSED_STREAM), each
	// made again on a new stream, as HTTP/2 clients do.
	Refused int `json:"refused,omitempty"`
	// WritesSeen counts reads that returned a nickname the writer set.
	WritesSeen int           `json:"writes_seen,omitempty"`
	Writer     *WriterResult `json:"writer,omitempty"`
}

// maxConns bounds -conns; RouteChat gives each connection a longitude of
// its own within a seed.
const maxConns = 256

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type options struct {
	addr       string
	workload   string
	conns      int
	conc       int
	warm, dur  time.Duration
	params     params
	tls        bool
	caFile     string
	insecure   bool
	writeShare float64
	tokenFile  string
	proto      string
}

func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.addr, "addr", "", "server address host:port")
	fs.StringVar(&o.workload, "workload", "getteam", "workload: "+strings.Join(workloadNames(), ", "))
	fs.IntVar(&o.conns, "conns", 1, "HTTP/2 connections, each driven by its own goroutine")
	fs.IntVar(&o.conc, "c", 64, "calls in flight on each connection")
	fs.DurationVar(&o.warm, "warmup", time.Second, "calls before the measured window")
	fs.DurationVar(&o.dur, "d", 5*time.Second, "measured window")
	fs.IntVar(&o.params.per, "n", 100, "messages sent per call by client- and bidi-streaming workloads")
	fs.IntVar(&o.params.seed, "seed", 0, "distinguishes runs so RouteChat locations never repeat on a server")
	fs.Float64Var(&o.params.unknown, "unknown", 0, "GetTeam workloads: share of calls (0..1) for a city without a team")
	fs.BoolVar(&o.tls, "tls", false, "TLS with ALPN h2 instead of cleartext HTTP/2")
	fs.StringVar(&o.caFile, "cacert", "", "with -tls: trust the certificates of this PEM file (default: the system's roots)")
	fs.BoolVar(&o.insecure, "insecure", false, "with -tls: do not verify the server's certificate (benchmark certificates)")
	fs.Float64Var(&o.writeShare, "write-share", 0, "GetTeam workloads: PutTeam calls per read (e.g. 0.01), issued by a second process")
	fs.StringVar(&o.proto, "protocol", "grpc", "how the calls travel: grpc, grpcweb (binary gRPC-Web) or connect (Connect's unary protocol, protobuf); the last two for the unary workloads (GetTeam, GetFeature). The -write-share writer speaks gRPC")
	fs.StringVar(&o.tokenFile, "admin-token-file", "", "file holding the admin bearer token (needed by -write-share)")
	writer := fs.Bool("writer", false, "internal: run as the PutTeam writer, paced by targets read on stdin")
	firstWriteFD := fs.Int("first-write-fd", 0, "internal, with -writer: report the first write's outcome on this inherited file descriptor")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the load generator itself here")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 2
		}
		defer f.Close()
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	tc, err := tlsConfig(o)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}
	d := dialer{addr: o.addr, tls: tc}
	if *writer {
		var first io.Writer
		if *firstWriteFD > 0 {
			f := os.NewFile(uintptr(*firstWriteFD), "first-write")
			defer f.Close()
			first = f
		}
		return runWriter(d, o.tokenFile, stdin, stdout, stderr, first)
	}
	build, ok := workloads[o.workload]
	switch {
	case !ok || o.addr == "":
		fmt.Fprintf(stderr, "loadgen: need -addr and -workload (one of %s)\n", strings.Join(workloadNames(), ", "))
		return 2
	case o.conns < 1 || o.conns > maxConns || o.conc < 1:
		fmt.Fprintf(stderr, "loadgen: -conns must be 1..%d and -c at least 1\n", maxConns)
		return 2
	case o.params.unknown < 0 || o.params.unknown > 1 || o.writeShare < 0 || o.writeShare > 1:
		fmt.Fprintln(stderr, "loadgen: -unknown and -write-share are shares between 0 and 1")
		return 2
	case (o.params.unknown > 0 || o.writeShare > 0) && !strings.HasSuffix(o.workload, "getteam"):
		fmt.Fprintln(stderr, "loadgen: -unknown and -write-share apply to the GetTeam workloads only")
		return 2
	case !slices.Contains(protocols, rpcProtocol(o.proto)):
		fmt.Fprintf(stderr, "loadgen: -protocol %q: want grpc, grpcweb or connect\n", o.proto)
		return 2
	case o.proto != string(protoGRPC) && !unaryWorkloads[o.workload]:
		fmt.Fprintf(stderr, "loadgen: -protocol %s applies to the unary workloads only (getteam, legacygetteam, getfeature, legacygetfeature)\n", o.proto)
		return 2
	case o.writeShare > 0 && o.tokenFile == "":
		fmt.Fprintln(stderr, "loadgen: -write-share needs -admin-token-file (PutTeam is an admin write)")
		return 2
	}
	res, err := run(o, d, build, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		if res.Errors == 0 {
			return 1
		}
	}
	_ = json.NewEncoder(stdout).Encode(res)
	if err != nil || res.Errors > 0 || (res.Writer != nil && res.Writer.Errors > 0) {
		return 1
	}
	return 0
}

func tlsConfig(o options) (*tls.Config, error) {
	if !o.tls {
		if o.caFile != "" || o.insecure {
			return nil, errors.New("-cacert and -insecure go with -tls")
		}
		return nil, nil
	}
	host := o.addr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	c := &tls.Config{NextProtos: []string{"h2"}, ServerName: strings.Trim(host, "[]"), InsecureSkipVerify: o.insecure, MinVersion: tls.VersionTLS12}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-cacert %s holds no PEM certificate", o.caFile)
		}
	}
	return c, nil
}

// run drives o.conns connections for the warm-up and the measured window
// and adds up what they saw; with o.writeShare it paces a writer process
// alongside.
func run(o options, d dialer, build func(params) *workload, stderr io.Writer) (Result, error) {
	res := Result{Workload: o.workload, Protocol: o.proto, Conns: o.conns, Conc: o.conc, Seconds: o.dur.Seconds(), Unknown: o.params.unknown}
	cpu0 := cpuTime()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conns := make([]net.Conn, o.conns)
	for i := range conns {
		c, err := d.dial(ctx)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return res, err
		}
		conns[i] = c
	}
	// Completed calls per connection, each on a cache line of its own so
	// the connections' goroutines never contend; the writer's pacer adds
	// them up.
	done := make([]counter, o.conns)
	var w *writerProc
	if o.writeShare > 0 {
		var err error
		if w, err = startWriter(o, stderr); err != nil {
			return res, err
		}
		// The writer's first write is acknowledged before any read is
		// made, so every run's reads can see a write, however slowly the
		// machine lets the writer start (its process, its connection).
		if err := w.firstWrite(); err != nil {
			for _, c := range conns {
				c.Close()
			}
			wr, werr := w.finish()
			res.Writer = &wr
			return res, errors.Join(err, werr)
		}
	}
	begin := time.Now()
	win := window{from: begin.Add(o.warm), to: begin.Add(o.warm + o.dur)}
	stopPacing := make(chan struct{})
	paced := make(chan struct{})
	go func() {
		defer close(paced)
		if w != nil {
			w.pace(func() int64 {
				var n int64
				for i := range done {
					n += done[i].n.Load()
				}
				return n
			}, o.writeShare, win, stopPacing)
		}
	}()

	stats := make([]connStats, o.conns)
	wls := make([]*workload, o.conns)
	errs := make([]error, o.conns)
	var wg sync.WaitGroup
	for i, c := range conns {
		p := o.params
		p.conn = i
		wls[i] = build(p)
		wls[i].proto = rpcProtocol(o.proto)
		wg.Go(func() {
			defer c.Close()
			stats[i], errs[i] = drive(c, d.scheme(), wls[i], o.conc, win, &done[i].n)
		})
	}
	wg.Wait()
	close(stopPacing)
	<-paced

	var lat histogram
	for i, s := range stats {
		res.Calls += s.calls
		res.Msgs += s.msgs
		res.CallsAll += s.callsAll
		res.Errors += s.errors
		if res.FirstErr == "" {
			res.FirstErr = s.firstErr
		}
		res.WritesSeen += wls[i].writesSeen
		res.Refused += s.refused
		lat.add(&s.lat)
	}
	res.P50, res.P90, res.P95 = lat.percentile(0.50), lat.percentile(0.90), lat.percentile(0.95)
	res.P99, res.P999, res.Max = lat.percentile(0.99), lat.percentile(0.999), lat.percentile(1)
	if res.CallsAll > 0 {
		res.ClientCPU = float64(cpuTime()-cpu0) / float64(time.Microsecond) / float64(res.CallsAll)
	}
	err := errors.Join(errs...)
	if w != nil {
		wr, werr := w.finish()
		res.Writer = &wr
		err = errors.Join(err, werr)
		if werr == nil {
			checkWritesSeen(&res)
		}
	}
	if err == nil && res.Calls == 0 && res.Errors == 0 {
		err = errors.New("no call completed inside the measured window")
	}
	return res, err
}

// counter is a count written by one goroutine and read by another,
// padded to a cache line.
type counter struct {
	n atomic.Int64
	_ [56]byte
}

// checkWritesSeen fails a run whose reads saw none of many acknowledged
// writes: they read something the writes do not reach (a cache that is
// never invalidated, say). Most writes set a nickname other than the
// team's own, and a run of seconds reads every team thousands of times.
func checkWritesSeen(res *Result) {
	if res.Writer != nil && res.Writer.WritesAll >= 20 && res.WritesSeen == 0 {
		res.Errors++
		if res.FirstErr == "" {
			res.FirstErr = fmt.Sprintf("the writer's %d acknowledged PutTeam calls were never seen by a read", res.Writer.WritesAll)
		}
	}
}

// cpuTime is this process's user+system time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
