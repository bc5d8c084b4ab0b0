package main

import (
	"bytes"
	"math"
	"regexp"
	"runtime"
	"runtime/metrics"
	"testing"
)

// A cumulative histogram is described by the span's samples alone: their
// count and the bucket bounds of their quantiles, in µs for seconds.
func TestHistogramLine(t *testing.T) {
	buckets := []float64{0, 1e-6, 1e-5, 1e-4, math.Inf(1)}
	base := &metrics.Float64Histogram{Counts: []uint64{7, 3, 0, 0}, Buckets: buckets}
	h := &metrics.Float64Histogram{Counts: []uint64{7 + 50, 3 + 40, 9, 1}, Buckets: buckets}
	want := "count 100 p50≤1µs p90≤10µs p99≤100µs p99.9≤100µs max≤100µs"
	if got := histogramLine(h, base, true); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := histogramLine(h, h, true); got != "count 0" {
		t.Errorf("an empty span: %q", got)
	}
	if got, want := histogramLine(h, nil, false), "count 110 p50≤1e-06 p90≤1e-05 p99≤0.0001 p99.9≤0.0001 max≤0.0001"; got != want {
		t.Errorf("no base, bytes:\ngot  %q\nwant %q", got, want)
	}
}

// Counters are written as their growth over the span, gauges as their
// value at its end.
func TestWriteMetrics(t *testing.T) {
	m0 := readMetrics()
	var keep [][]byte
	for range 1000 {
		keep = append(keep, make([]byte, 64))
	}
	runtime.GC()
	m1 := readMetrics()
	var b bytes.Buffer
	if err := writeMetrics(&b, m0, m1, 2); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	allocs := regexp.MustCompile(`(?m)^/gc/heap/allocs:objects +\+([0-9]+) \(([0-9]+)/s\)$`).FindStringSubmatch(out)
	if allocs == nil || len(allocs[1]) < 4 {
		t.Errorf("1000 allocations not counted:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^/gc/cycles/forced:gc-cycles +\+[1-9][0-9]* \(`).MatchString(out) {
		t.Errorf("the forced GC not counted:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^/sched/gomaxprocs:threads +[1-9][0-9]*$`).MatchString(out) {
		t.Errorf("GOMAXPROCS not written as a gauge:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^/sched/latencies:seconds +count [0-9]+`).MatchString(out) {
		t.Errorf("no scheduling latencies:\n%s", out)
	}
	runtime.KeepAlive(keep)
}
