package main

import (
	"fmt"
	"io"
	"math"
	"runtime/metrics"
	"slices"
	"strings"
)

// reading is one metric's value at a moment; a histogram's counts are a
// copy (metrics.Read reuses its own).
type reading struct {
	name       string
	cumulative bool
	kind       metrics.ValueKind
	u          uint64
	f          float64
	h          *metrics.Float64Histogram
}

// readMetrics reads every metric the runtime supports.
func readMetrics() []reading {
	descs := metrics.All()
	s := make([]metrics.Sample, len(descs))
	for i, d := range descs {
		s[i].Name = d.Name
	}
	metrics.Read(s)
	out := make([]reading, len(s))
	for i, x := range s {
		r := reading{name: x.Name, cumulative: descs[i].Cumulative, kind: x.Value.Kind()}
		switch r.kind {
		case metrics.KindUint64:
			r.u = x.Value.Uint64()
		case metrics.KindFloat64:
			r.f = x.Value.Float64()
		case metrics.KindFloat64Histogram:
			h := x.Value.Float64Histogram()
			r.h = &metrics.Float64Histogram{Counts: slices.Clone(h.Counts), Buckets: h.Buckets}
		}
		out[i] = r
	}
	return out
}

// writeMetrics writes what the runtime's metrics say of the span between
// two readings, one line each: for a cumulative counter how much it grew,
// for a gauge its value at the end, and for a cumulative histogram (the
// scheduling latencies, the pauses) the count of the span's samples and
// their quantiles. This is the /sched and /sync view of where time goes
// that a CPU profile does not give: how long runnable goroutines waited
// for a P, and how long goroutines waited on mutexes.
func writeMetrics(w io.Writer, before, after []reading, seconds float64) error {
	prev := map[string]reading{}
	for _, r := range before {
		prev[r.name] = r
	}
	if _, err := fmt.Fprintf(w, "# runtime/metrics over %.1f s of load: counters as their growth, gauges at the end, histograms as the span's samples\n", seconds); err != nil {
		return err
	}
	for _, r := range after {
		b, ok := prev[r.name]
		ok = ok && r.cumulative && b.kind == r.kind
		var line string
		switch r.kind {
		case metrics.KindUint64:
			if ok {
				line = fmt.Sprintf("+%d (%.0f/s)", r.u-b.u, float64(r.u-b.u)/seconds)
			} else {
				line = fmt.Sprintf("%d", r.u)
			}
		case metrics.KindFloat64:
			if ok {
				line = fmt.Sprintf("+%.6g", r.f-b.f)
			} else {
				line = fmt.Sprintf("%.6g", r.f)
			}
		case metrics.KindFloat64Histogram:
			var base *metrics.Float64Histogram
			if ok {
				base = b.h
			}
			line = histogramLine(r.h, base, strings.HasSuffix(r.name, ":seconds"))
		default:
			continue
		}
		if _, err := fmt.Fprintf(w, "%-52s %s\n", r.name, line); err != nil {
			return err
		}
	}
	return nil
}

// histogramLine describes h less base (nil: h alone): its count and the
// upper bounds of the buckets holding its 50th, 90th, 99th and 99.9th
// percentiles and its largest sample.
func histogramLine(h, base *metrics.Float64Histogram, seconds bool) string {
	counts := slices.Clone(h.Counts)
	if base != nil && len(base.Counts) == len(counts) {
		for i := range counts {
			counts[i] -= base.Counts[i]
		}
	}
	var n uint64
	for _, c := range counts {
		n += c
	}
	if n == 0 {
		return "count 0"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "count %d", n)
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p99.9", 0.999}, {"max", 1}} {
		fmt.Fprintf(&b, " %s≤%s", q.name, bound(quantileBucket(counts, n, q.q), h.Buckets, seconds))
	}
	return b.String()
}

// quantileBucket is the index of the bucket holding the q-quantile of n
// samples counted in counts.
func quantileBucket(counts []uint64, n uint64, q float64) int {
	rank := uint64(math.Ceil(q * float64(n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			return i
		}
	}
	return len(counts) - 1
}

// bound is bucket i's upper bound (its lower one when that is +Inf), in
// µs or ms when the buckets are seconds.
func bound(i int, buckets []float64, seconds bool) string {
	v := buckets[i+1]
	if math.IsInf(v, 1) {
		v = buckets[i]
	}
	switch {
	case math.IsInf(v, 0) || !seconds:
		return fmt.Sprintf("%.3g", v)
	case v < 1e-3:
		return fmt.Sprintf("%.3gµs", v*1e6)
	case v < 1:
		return fmt.Sprintf("%.3gms", v*1e3)
	}
	return fmt.Sprintf("%.3gs", v)
}
