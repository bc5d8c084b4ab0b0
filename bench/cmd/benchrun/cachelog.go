package main

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// cacheLine keeps the last "team cache" line a Switchyard server logs: the
// team cache's counters, which it logs once a minute and as it stops. It
// is the server's stderr; every other line (one per call) is dropped as
// it arrives, as /dev/null would.
type cacheLine struct {
	mu      sync.Mutex
	partial []byte // the end of the last write, up to its first newline
	last    string
}

// cacheMarker starts the cache's line's message in the text log format
// Switchyard ships with.
var cacheMarker = []byte(`msg="team cache"`)

func (c *cacheLine) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			// Only a line that may be the cache's is kept whole.
			if len(c.partial) < 4096 {
				c.partial = append(c.partial, p...)
			}
			break
		}
		line := p[:i]
		if len(c.partial) > 0 {
			line = append(c.partial, line...)
			c.partial = c.partial[:0]
		}
		if bytes.Contains(line, cacheMarker) {
			c.last = string(line)
		}
		p = p[i+1:]
	}
	return n, nil
}

// cacheStats are the counters of a "team cache" line.
type cacheStats map[string]float64

// stats parses the last line kept; nil when there was none.
func (c *cacheLine) stats() cacheStats {
	c.mu.Lock()
	line := c.last
	c.mu.Unlock()
	if line == "" {
		return nil
	}
	st := cacheStats{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			st[k] = x
		}
	}
	return st
}

// row is the line of the report's cache table.
func (st cacheStats) row(label string) string {
	return fmt.Sprintf("| %s | %.2f%% | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", label, 100*st["hit_ratio"],
		st["hits"], st["hits_not_found"], st["misses"], st["joined"], st["down"], st["stale"], st["changes"]-st["resets"], st["confirmed"],
		st["own"], st["older"], st["held"], st["writes"], st["writes_kept"], st["echoes_late"], st["holds_late"], st["evictions"])
}

// reads are the Gets the cache answered.
func (st cacheStats) reads() float64 {
	return st["hits"] + st["misses"] + st["joined"] + st["down"]
}

func anyReads(caches map[string]cacheStats) bool {
	for _, st := range caches {
		if st.reads() > 0 {
			return true
		}
	}
	return false
}
