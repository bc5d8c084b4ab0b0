// Command benchrun measures Switchyard against grpc-go peers side by side.
// For each server core count asked for (-cores) that the machine can give,
// it starts every server the rows need pinned to the same cores with
// GOMAXPROCS equal to their number, runs the load generator on the other
// cores with one connection per server core, and runs every row in
// interleaved rounds, the order of the two servers alternating, so noise
// on a shared machine hits both alike. It prints the medians (throughput,
// p50/p99, server and load generator CPU per call, RSS sampled under
// load), one ratio line per row against its peer, and a scaling table
// across core counts; it fails when any response check failed.
//
// Pinning is done by benchrun itself (see execPinned), so it needs nothing
// installed beyond its sibling binaries in -bin.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/switchyard/switchyard/bench/internal/proc"
	"github.com/switchyard/switchyard/internal/pgtest"
)

type config struct {
	bin                 string
	rounds              int
	dur, warm           time.Duration
	only                string
	out                 string
	cores               []int
	unknown, writeShare float64
	postgres            string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == pinFlag {
		err := execPinned(os.Args[2:])
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
	var c config
	var cores string
	flag.StringVar(&c.bin, "bin", ".tmp/bench", "directory holding switchyard, grpcteams, grpcref, routeguide-example and loadgen")
	flag.IntVar(&c.rounds, "rounds", 3, "interleaved rounds per row (the order of the two servers alternates)")
	flag.DurationVar(&c.dur, "d", 4*time.Second, "measured window per run")
	flag.DurationVar(&c.warm, "warmup", time.Second, "warm-up per run")
	flag.StringVar(&c.only, "only", "", "comma-separated rows to run (default all): "+strings.Join(rowNames(), ","))
	flag.StringVar(&c.out, "o", "", "also write the tables as Markdown to this file")
	flag.StringVar(&cores, "cores", "1", "comma-separated server core counts, e.g. 1,2,4,8; counts the machine cannot give are skipped (and said so)")
	flag.Float64Var(&c.unknown, "unknown", 0.1, "GetTeam rows: share of calls for a city without a team")
	flag.Float64Var(&c.writeShare, "write-share", 0.01, "GetTeam rows: PutTeam calls per read, from a writer process")
	flag.StringVar(&c.postgres, "postgres", "auto", `PostgreSQL rows: "auto" (run them when initdb is found), "on" (fail without it) or "off"`)
	layoutOnly := flag.Bool("layout", false, `run nothing: print where the first count of -cores this machine gives would run, as "N SERVER_CPUS LOAD_CPUS" (CPU lists comma-separated), for scripts that start their own processes (device.sh)`)
	flag.Parse()
	var err error
	if c.cores, err = parseCounts(cores); err == nil {
		if *layoutOnly {
			var line string
			if line, err = firstLayout(allowedCPUs(), c.cores); err == nil {
				fmt.Println(line)
			}
		} else {
			err = run(c)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func rowNames() []string {
	var names []string
	for _, w := range table {
		names = append(names, w.name)
	}
	return names
}

// loadKey names what the load generator does in a row; rows with the same
// key on the same server share its runs.
func (w workload) loadKey() string {
	return fmt.Sprintf("%s c%d n%d mix=%v protocol=%s", w.load, w.conc, w.per, w.mix, w.proto)
}

// runKey names the runs of server that w's figures come from: its load,
// shared with the rows that make the same load on the same server in a
// round, except the peer's runs of a row with a peer run of its own.
func (w workload) runKey(server string) string {
	if w.ownPeer && server == w.peer {
		return w.loadKey() + " for " + w.name
	}
	return w.loadKey()
}

func run(c config) error {
	if c.postgres != "auto" && c.postgres != "on" && c.postgres != "off" {
		return fmt.Errorf(`-postgres %q: want auto, on or off`, c.postgres)
	}
	cpus := allowedCPUs()
	layouts, skipped := plan(cpus, c.cores)
	fmt.Printf("machine: %d CPUs (%s), %s; load average %s\n", len(cpus), cpuList(cpus), cpuModel(), loadAvgLine())
	for _, s := range skipped {
		fmt.Println(s)
	}
	if len(layouts) == 0 {
		return errors.New("no requested core count fits this machine")
	}
	var rows []workload
	for _, w := range table {
		if c.only == "" || slices.Contains(strings.Split(c.only, ","), w.name) {
			rows = append(rows, w)
		}
	}
	if len(rows) == 0 {
		return fmt.Errorf("-only %q names no row; rows: %s", c.only, strings.Join(rowNames(), ","))
	}

	// Every server keeps its data in a directory of its own under one
	// temporary directory, never the user's; removed at the end.
	tmp, err := os.MkdirTemp("", "switchyard-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	f := files{dir: tmp, token: filepath.Join(tmp, "admin-token")}
	if err := os.WriteFile(f.token, []byte("bench-admin-token\n"), 0o600); err != nil {
		return err
	}
	if f.cert, f.key, err = writeCert(tmp); err != nil {
		return err
	}
	if rows, err = withPostgres(c, rows, layouts, &f); err != nil {
		return err
	}
	if f.dsn != nil {
		defer f.stopPG()
	}

	var m measurements
	rss := map[int]map[string]proc.Mem{}      // cores → server → memory after the runs
	caches := map[int]map[string]cacheStats{} // cores → Switchyard server → its team cache's counters
	seed := 1
	for _, l := range layouts {
		here := rowsAt(rows, l.cores)
		if len(here) == 0 {
			continue
		}
		fmt.Printf("\n== %d server core(s): servers on CPUs %s (GOMAXPROCS=%d), load generator on CPUs %s, %d connection(s)\n",
			l.cores, cpuList(l.server), l.cores, cpuList(l.client), l.cores)
		if slices.Equal(l.server, l.client) {
			fmt.Println("note: one CPU: the servers and the load generator share it, so the numbers say little")
		}
		if sib := sharedSiblings(l); len(sib) > 0 {
			fmt.Printf("note: server CPUs share hyperthread siblings with the load generator (%s)\n", strings.Join(sib, " "))
		}
		// benchrun's own work is no part of the server under test: it
		// reads each Switchyard server's log line by line (about 1% of
		// those servers' CPU over a full run, up to 8% in one run).
		if err := pinSelf(l.client); err != nil {
			return err
		}
		fmt.Printf("benchrun itself on CPUs %s, with the load generator\n", cpuList(l.client))
		if f.pgPid != 0 {
			// The database is no part of the server under test: it
			// works beside the load generator, off the server's cores.
			if err := pinTree(f.pgPid, l.client); err != nil {
				return err
			}
			fmt.Printf("PostgreSQL on CPUs %s, with the load generator\n", cpuList(l.client))
		}
		servers, err := startAll(c.bin, l, here, f)
		if err != nil {
			return err
		}
		p := runParams{unknown: c.unknown, writeShare: c.writeShare, warm: c.warm, dur: c.dur}
		err = rounds(c, l, here, servers, p, f, &seed, &m)
		rss[l.cores] = map[string]proc.Mem{}
		caches[l.cores] = map[string]cacheStats{}
		for name, s := range servers {
			select {
			case <-s.done:
				err = errors.Join(err, fmt.Errorf("%s exited during the benchmark", name))
			default:
			}
			rss[l.cores][name] = proc.Memory(s.cmd.Process.Pid)
			stop(s) // a Switchyard server logs its cache's counters as it stops
			if s.cache != nil {
				if st := s.cache.stats(); st != nil {
					caches[l.cores][name] = st
				}
			}
		}
		if err != nil {
			return err
		}
	}
	md := report(c, layouts, skipped, rows, &m, rss, caches)
	fmt.Print("\n" + md)
	if c.out != "" {
		return os.WriteFile(c.out, []byte(md), 0o644)
	}
	return nil
}

// rowsAt are the rows that run at n server cores.
func rowsAt(rows []workload, n int) []workload {
	var out []workload
	for _, w := range rows {
		if w.maxCores == 0 || n <= w.maxCores {
			out = append(out, w)
		}
	}
	return out
}

// startAll starts every server the rows need, pinned to l's server CPUs.
func startAll(bin string, l layout, rows []workload, f files) (map[string]*server, error) {
	servers := map[string]*server{}
	for _, w := range rows {
		for _, name := range []string{w.sy, w.peer} {
			if servers[name] != nil {
				continue
			}
			s, err := startServer(name, bin, l, f)
			if err != nil {
				for _, s := range servers {
					stop(s)
				}
				return nil, err
			}
			servers[name] = s
		}
	}
	return servers, nil
}

// rounds runs every row c.rounds times, each round alternating which of
// the row's two servers goes first; a server's run of a load is shared by
// the rows that ask for the same load in that round.
func rounds(c config, l layout, rows []workload, servers map[string]*server, p runParams, f files, seed *int, m *measurements) error {
	for r := range c.rounds {
		fmt.Printf("-- round %d of %d (load average %s)\n", r+1, c.rounds, loadAvgLine())
		done := map[string]bool{}
		for _, w := range rows {
			order := []string{w.sy, w.peer}
			if r%2 == 1 {
				order = []string{w.peer, w.sy}
			}
			for _, name := range order {
				key := name + " " + w.runKey(name)
				if done[key] {
					continue
				}
				done[key] = true
				res, err := quietRun(servers, name, l.cores, seed, func(seed int) (result, error) {
					p.seed = seed
					return load(c.bin, l, servers[name], w, p, f)
				})
				if err != nil {
					return fmt.Errorf("%d core(s), round %d, %s on %s: %w", l.cores, r+1, w.name, name, err)
				}
				m.add(l.cores, w.runKey(name), name, res)
				line := fmt.Sprintf("%-20s %-22s %9.0f calls/s %10.0f %s/s p99 %6.2f ms  cpu %6.1f µs/call  loadgen %5.1f µs/call  rss %5.1f MiB (anon %4.1f)",
					w.name, serverKinds[name].label, res.callsPerSec(), res.msgsPerSec(), w.unit, res.P99, res.cpuUS, res.ClientCPU, res.rssMiB, res.anonMiB)
				if res.Writer != nil {
					line += fmt.Sprintf("  writes %.0f/s (seen by %d reads)", res.writesPerSec(), res.WritesSeen)
				}
				if res.others > othersQuiet {
					line += fmt.Sprintf("  disturbed: other servers used %.0f%% of the server CPUs in each of %d runs", 100*res.others, res.tries)
				}
				if res.Refused > 0 {
					line += fmt.Sprintf("  refused streams %d (made again)", res.Refused)
				}
				fmt.Println(line)
			}
		}
	}
	return nil
}

// withPostgres starts the private PostgreSQL the rows need, or drops the
// PostgreSQL rows (saying so) when -postgres is auto and there is none.
func withPostgres(c config, rows []workload, layouts []layout, f *files) ([]workload, error) {
	need := false
	for _, l := range layouts {
		for _, w := range rowsAt(rows, l.cores) {
			need = need || serverKinds[w.sy].pg || serverKinds[w.peer].pg
		}
	}
	if !need {
		return rows, nil
	}
	drop := func(why string) []workload {
		fmt.Printf("skipping the PostgreSQL rows: %s\n", why)
		return slices.DeleteFunc(rows, func(w workload) bool { return serverKinds[w.sy].pg || serverKinds[w.peer].pg })
	}
	if c.postgres == "off" {
		return drop("-postgres off"), nil
	}
	bin, err := pgtest.BinDir()
	if err != nil {
		if c.postgres == "on" {
			return nil, err
		}
		return drop(err.Error()), nil
	}
	// As a production server runs: fsync on, room for the working set.
	pg, err := pgtest.StartWith(bin, pgtest.Options{Durable: true, SharedBuffers: "64MB"})
	if err != nil {
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	dsns := map[string]string{}
	for _, db := range []string{"switchyard"} {
		if dsns[db], err = pg.CreateDatabase(context.Background(), db); err != nil {
			pg.Stop()
			return nil, fmt.Errorf("PostgreSQL: %w", err)
		}
	}
	fmt.Printf("PostgreSQL from %s in %s\n", bin, pg.Dir())
	f.dsn = func(db string) string { return dsns[db] }
	f.pgPid = pg.Pid()
	f.stopPG = pg.Stop
	return rows, nil
}

// loadAvgLine is the machine's 1-, 5- and 15-minute load averages, or
// "unknown".
func loadAvgLine() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
