package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/switchyard/switchyard/bench/internal/proc"
)

// summary is the medians of one row's runs on one server.
type summary struct {
	calls, msgs, p50, p99, cpu, clientCPU, rss float64
	anon                                       float64 // of rss, anonymous
	writes, writeShare                         float64 // PutTeam/s, and per read
	seen                                       float64 // reads that saw a write, per run
	load1Min, load1Max                         float64
	n                                          int
}

func summarize(rs []result) summary {
	s := summary{n: len(rs)}
	if len(rs) == 0 {
		return s
	}
	s.calls = median(rs, result.callsPerSec)
	s.msgs = median(rs, result.msgsPerSec)
	s.p50 = median(rs, func(r result) float64 { return r.P50 })
	s.p99 = median(rs, func(r result) float64 { return r.P99 })
	s.cpu = median(rs, func(r result) float64 { return r.cpuUS })
	s.clientCPU = median(rs, func(r result) float64 { return r.ClientCPU })
	s.rss = median(rs, func(r result) float64 { return r.rssMiB })
	s.anon = median(rs, func(r result) float64 { return r.anonMiB })
	s.writes = median(rs, result.writesPerSec)
	s.writeShare = median(rs, func(r result) float64 {
		if r.callsPerSec() == 0 {
			return 0
		}
		return r.writesPerSec() / r.callsPerSec()
	})
	s.seen = median(rs, func(r result) float64 { return float64(r.WritesSeen) })
	s.load1Min, s.load1Max = rs[0].load1, rs[0].load1
	for _, r := range rs {
		s.load1Min, s.load1Max = min(s.load1Min, r.load1), max(s.load1Max, r.load1)
	}
	return s
}

// rate is what a row's throughput target is on: calls/s, or messages/s
// for streams.
func (w workload) rate(s summary) float64 {
	if w.stream {
		return s.msgs
	}
	return s.calls
}

// report renders every core count's table, ratio lines and RSS, then the
// scaling table, as Markdown.
func report(c config, layouts []layout, skipped []string, rows []workload, m *measurements, rss map[int]map[string]proc.Mem, caches map[int]map[string]cacheStats) string {
	var b strings.Builder
	loadMin, loadMax := -1.0, 0.0
	for _, l := range layouts {
		here := rowsAt(rows, l.cores)
		if len(here) == 0 {
			continue
		}
		fmt.Fprintf(&b, "### %d server core(s)\n\nServers on CPUs %s (GOMAXPROCS=%d), load generator on CPUs %s, %d connection(s) per run.\n\n",
			l.cores, cpuList(l.server), l.cores, cpuList(l.client), l.cores)
		b.WriteString("| row | server | calls/s | msgs/s | p50 ms | p99 ms | server CPU µs/call | loadgen CPU µs/call | RSS under load MiB (anonymous) | PutTeam/s (share) |\n")
		b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		var ratios []string
		for _, w := range here {
			sums := map[string]summary{}
			for _, name := range []string{w.sy, w.peer} {
				s := summarize(m.get(l.cores, w.runKey(name), name))
				sums[name] = s
				if s.n > 0 {
					if loadMin < 0 || s.load1Min < loadMin {
						loadMin = s.load1Min
					}
					loadMax = max(loadMax, s.load1Max)
				}
				writes := "–"
				if w.mix {
					writes = fmt.Sprintf("%.0f (%.2f%%)", s.writes, 100*s.writeShare)
				}
				fmt.Fprintf(&b, "| %s (%d×%d) | %s | %.0f | %.0f %s | %.2f | %.2f | %.1f | %.1f | %.1f (%.1f) | %s |\n",
					w.name, l.cores, w.conc, serverKinds[name].label, s.calls, s.msgs, w.unit, s.p50, s.p99, s.cpu, s.clientCPU, s.rss, s.anon, writes)
			}
			ratios = append(ratios, ratioLine(w, l.cores, sums[w.sy], sums[w.peer])+
				roundByRound(w, m.get(l.cores, w.runKey(w.sy), w.sy), m.get(l.cores, w.runKey(w.peer), w.peer)))
		}
		fmt.Fprintf(&b, "\n```\n%s\n```\n\n", strings.Join(ratios, "\n"))
		b.WriteString("| server | RSS after the runs MiB | peak RSS MiB |\n|---|---:|---:|\n")
		var names []string
		for name := range rss[l.cores] {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			v := rss[l.cores][name]
			fmt.Fprintf(&b, "| %s | %.1f | %.1f |\n", serverKinds[name].label, v.RSS, v.Peak)
		}
		b.WriteString("\n")
		if anyReads(caches[l.cores]) {
			b.WriteString("Team cache of each Switchyard server, over all its runs at this core count (the GetTeam rows' reads and their writer's PutTeam; its closing `team cache` log line):\n\n")
			b.WriteString("| server | hit ratio | hits | of them not found | misses | joined a miss | read while feed down | stale fills dropped | keys changed (feed) | of them confirming what was kept | the store's own reports, passed over | older than a kept write, passed over | taken while this process wrote the key, held | own writes | of them kept | kept writes whose echo came late | holds past their bound | evictions |\n")
			b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
			var names []string
			for name, st := range caches[l.cores] {
				if st.reads() > 0 { // servers of the route rows make no GetTeam
					names = append(names, name)
				}
			}
			slices.Sort(names)
			for _, name := range names {
				b.WriteString(caches[l.cores][name].row(serverKinds[name].label))
			}
			b.WriteString("\n")
		}
	}

	b.WriteString("### Scaling\n\n")
	b.WriteString("Throughput (calls/s; messages/s for streams), server CPU per call and RSS under load, Switchyard against the row's peer, per server core count; in brackets the part of the RSS that is anonymous memory (heap, stacks, the runtime's), the rest being pages of files, the executable's.\n\n")
	b.WriteString("| row | peer | server cores | switchyard | peer | ratio | target | CPU µs/call switchyard / peer | RSS under load MiB switchyard / peer (anonymous) |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, w := range rows {
		for _, l := range layouts {
			if w.maxCores > 0 && l.cores > w.maxCores {
				continue
			}
			a := summarize(m.get(l.cores, w.runKey(w.sy), w.sy))
			p := summarize(m.get(l.cores, w.runKey(w.peer), w.peer))
			target := "–"
			if t := w.targetAt(l.cores); t > 0 && !w.extra {
				target = fmt.Sprintf("≥ %.1fx", t)
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %.0f | %.2fx | %s | %.1f / %.1f | %.1f / %.1f (%.1f / %.1f) |\n",
				w.name, serverKinds[w.peer].label, l.cores, w.rate(a), w.rate(p), ratio(w.rate(a), w.rate(p)), target, a.cpu, p.cpu, a.rss, p.rss, a.anon, p.anon)
		}
	}
	if len(skipped) > 0 {
		b.WriteString("\nNot measured on this machine:\n\n")
		for _, s := range skipped {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	fmt.Fprintf(&b, "\nMedians of %d interleaved rounds, %s measured after %s warm-up per run; GetTeam rows: %.0f%% unknown cities, PutTeam at %.1f%% of the read rate from a writer process. 1-minute load average as runs began: %.2f–%.2f.\n",
		c.rounds, c.dur, c.warm, 100*c.unknown, 100*c.writeShare, max(loadMin, 0), loadMax)
	kept, again, busy := m.disturbed()
	fmt.Fprintf(&b, "Each run began once the other servers, on the same CPUs, had used under %.0f%% of them for %s. Runs made again because the other servers used more during them: %d (%d runs kept); runs kept although they did in all %d tries: %d.\n",
		100*othersQuiet, quietWindow, again, kept, runTries, busy)
	return b.String()
}

// ratioLine compares a row's Switchyard medians with its peer's against
// issue 16's targets (extra rows carry none).
func ratioLine(w workload, cores int, a, p summary) string {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	label := fmt.Sprintf("%-20s vs %-20s", w.name, serverKinds[w.peer].label)
	tr, cr, rr, pr := ratio(w.rate(a), w.rate(p)), ratio(a.cpu, p.cpu), ratio(a.rss, p.rss), ratio(a.p99, p.p99)
	what := "throughput"
	if w.stream {
		what = "msgs/s"
	}
	if w.extra {
		return fmt.Sprintf("%s %s %.2fx, p99 %.2fx, server CPU/call %.2fx, RSS under load %.2fx (extra row: no target)", label, what, tr, pr, cr, rr)
	}
	t := w.targetAt(cores)
	line := fmt.Sprintf("%s %s %.2fx (target >= %.1fx: %s)", label, what, tr, t, verdict(tr >= t))
	if !w.stream {
		line += fmt.Sprintf(", p99 %.2fx (<= 1.0x: %s)", pr, verdict(pr <= 1))
	}
	if w.mix {
		line += fmt.Sprintf(", server CPU/call %.2fx (<= 1.0x: %s)", cr, verdict(cr <= 1))
	} else {
		line += fmt.Sprintf(", server CPU/call %.2fx", cr)
	}
	return line + fmt.Sprintf(", RSS under load %.2fx (<= 1.25x: %s)", rr, verdict(rr <= 1.25))
}

// roundByRound is a row's throughput ratio in each round: Switchyard's
// run against its peer's run of the same round, close in time, so that a
// noisy window hitting both cancels out of the ratio; the medians the
// line starts with are taken per server across rounds. Empty when the
// rounds do not pair up.
func roundByRound(w workload, a, p []result) string {
	if len(a) == 0 || len(a) != len(p) {
		return ""
	}
	rate := result.callsPerSec
	if w.stream {
		rate = result.msgsPerSec
	}
	each := make([]string, len(a))
	for i := range a {
		each[i] = fmt.Sprintf("%.2f", ratio(rate(a[i]), rate(p[i])))
	}
	return "; round by round " + strings.Join(each, ", ") + "x"
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func median(rs []result, f func(result) float64) float64 {
	if len(rs) == 0 {
		return 0
	}
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2]
}
