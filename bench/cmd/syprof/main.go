// Command syprof serves Switchyard as cmd/switchyard does (same server,
// transport and log setup) and writes a pprof CPU profile of the first
// -seconds of load, for BENCHMARKS.md's "where time goes".
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"time"

	"github.com/switchyard/switchyard/internal/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	out := flag.String("cpuprofile", "cpu.pprof", "profile file")
	after := flag.Duration("after", time.Second, "start profiling this long after listening (warm-up)")
	seconds := flag.Duration("seconds", 4*time.Second, "profile length")
	flag.Parse()
	logOut := server.NewCoalescingWriter(os.Stderr, 1<<20)
	logger := slog.New(slog.NewTextHandler(logOut, nil))
	srv := server.New(server.Config{Logger: logger})
	hs := server.NewHTTPServer(srv.Handler, server.HTTPConfig{}, logger)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	go func() { _ = hs.Serve(server.BufferedListener(ln)) }()
	time.Sleep(*after)
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = pprof.StartCPUProfile(f)
	time.Sleep(*seconds)
	pprof.StopCPUProfile()
	_ = f.Close()
}
