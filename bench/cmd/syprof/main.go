// Command syprof serves Switchyard as cmd/switchyard does (same server,
// transport and log setup) and writes a pprof CPU profile of the first
// -seconds of load, for BENCHMARKS.md's "where time goes" (and, with
// -memprofile, where the allocations come from).
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/switchyard/switchyard/internal/coalesce"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/telemetry"
	"github.com/switchyard/switchyard/services/teams"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	out := flag.String("cpuprofile", "cpu.pprof", "profile file")
	after := flag.Duration("after", time.Second, "start profiling this long after listening (warm-up)")
	seconds := flag.Duration("seconds", 4*time.Second, "profile length")
	memOut := flag.String("memprofile", "", "also write an allocation profile of the same span (sampled every 512 bytes) here")
	mutexOut := flag.String("mutexprofile", "", "also write a mutex contention profile of the same span (every event) here")
	blockOut := flag.String("blockprofile", "", "also write a blocking profile of the same span (every event) here")
	metricsOut := flag.String("metrics", "", "also write what runtime/metrics say of the same span (scheduling latencies, mutex wait, GC) here")
	wait := flag.Bool("wait", false, "once the profiles are written, keep serving until SIGINT or SIGTERM (so that a load generator running past the span does not lose its connections)")
	flag.Parse()
	logOut := coalesce.NewWriter(os.Stderr, 1<<20)
	logger := slog.New(telemetry.NewTextHandler(logOut, slog.LevelInfo)) // as cmd/switchyard logs
	// GetTeam as the binary serves it: from the team cache (here on the
	// in-memory store, so the profile shows no SQLite read).
	cache := teams.NewCache(teams.NewMemStore(teams.TutorialTeams), teams.DefaultCacheEntries, logger)
	stack := server.NewStack(server.Config{Logger: logger, Teams: cache}, server.HTTPConfig{})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	go func() { _ = stack.Serve(ln) }()
	time.Sleep(*after)
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *memOut != "" {
		runtime.MemProfileRate = 512 // from here: the load only
	}
	if *mutexOut != "" {
		runtime.SetMutexProfileFraction(1)
	}
	if *blockOut != "" {
		runtime.SetBlockProfileRate(1)
	}
	m0 := readMetrics()
	_ = pprof.StartCPUProfile(f)
	time.Sleep(*seconds)
	pprof.StopCPUProfile()
	m1 := readMetrics()
	_ = f.Close()
	if *metricsOut != "" {
		mf, err := os.Create(*metricsOut)
		if err == nil {
			err = writeMetrics(mf, m0, m1, seconds.Seconds())
			if cerr := mf.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	for name, out := range map[string]string{"mutex": *mutexOut, "block": *blockOut} {
		if out == "" {
			continue
		}
		pf, err := os.Create(out)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_ = pprof.Lookup(name).WriteTo(pf, 0)
		_ = pf.Close()
	}
	if *memOut != "" {
		mf, err := os.Create(*memOut)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_ = pprof.Lookup("allocs").WriteTo(mf, 0)
		_ = mf.Close()
	}
	if *wait {
		fmt.Fprintln(os.Stderr, "syprof: profiles written; serving until SIGINT or SIGTERM")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
	}
}
