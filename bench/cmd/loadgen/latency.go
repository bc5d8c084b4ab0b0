package main

import (
	"math/bits"
	"time"
)

// histogram counts call latencies in log-linear buckets: exact below
// 256 ns, then 128 buckets per power of two, so a reported percentile is
// within 0.8% of the true value. Its size is fixed whatever the call
// rate, and connections' histograms add up, so the percentiles are those
// of every measured call of the run, not of a sample.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	histSub     = 128
	histBuckets = 2*histSub + 40*histSub // up to 2^47 ns (39 hours)
)

func bucketOf(d time.Duration) int {
	v := uint64(max(d, 0))
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(v) - 8 // keeps v's top 8 bits: 128..255
	return min(2*histSub+(shift-1)*histSub+int(v>>shift)-histSub, histBuckets-1)
}

// lowerBound is the smallest latency bucket b holds.
func lowerBound(b int) time.Duration {
	if b < 2*histSub {
		return time.Duration(b)
	}
	shift := (b-2*histSub)/histSub + 1
	return time.Duration(uint64((b-2*histSub)%histSub+histSub) << shift)
}

func (h *histogram) record(d time.Duration) {
	h.counts[bucketOf(d)]++
	h.n++
	h.max = max(h.max, d)
}

func (h *histogram) add(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// percentile is the latency below which the fraction p of the calls fall,
// in milliseconds (the middle of its bucket; the exact maximum for p = 1).
func (h *histogram) percentile(p float64) float64 {
	if h.n == 0 {
		return 0
	}
	if p >= 1 {
		return ms(h.max)
	}
	rank := uint64(float64(h.n) * p) // calls strictly below the answer
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen > rank {
			lo, hi := lowerBound(b), lowerBound(b+1)
			return ms(min(lo+(hi-lo)/2, h.max))
		}
	}
	return ms(h.max)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
