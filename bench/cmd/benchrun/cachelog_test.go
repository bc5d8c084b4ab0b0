package main

import (
	"fmt"
	"strings"
	"testing"
)

// The server's stderr arrives in writes that split lines anywhere: the
// last "team cache" line is kept whole and parsed; other lines are not.
func TestCacheLine(t *testing.T) {
	var log strings.Builder
	for i := range 3 {
		fmt.Fprintf(&log, "time=x level=INFO msg=rpc procedure=/teams.v1.TeamsService/GetTeam code=ok n=%d\n", i)
		fmt.Fprintf(&log, "time=x level=INFO msg=\"team cache\" hit_ratio=0.99%d hits=%d misses=2 closing=false\n", i, 100+i)
	}
	log.WriteString("time=x level=INFO msg=stopped\n")
	text := log.String()
	for _, chunk := range []int{1, 7, 64, len(text)} {
		c := &cacheLine{}
		for rest := text; rest != ""; {
			n := min(chunk, len(rest))
			if w, err := c.Write([]byte(rest[:n])); err != nil || w != n {
				t.Fatalf("Write = %d, %v", w, err)
			}
			rest = rest[n:]
		}
		st := c.stats()
		if st["hit_ratio"] != 0.992 || st["hits"] != 102 || st["misses"] != 2 {
			t.Errorf("writes of %d bytes: %v, want the last line's counters", chunk, st)
		}
	}
	if st := (&cacheLine{}).stats(); st != nil {
		t.Errorf("no line: %v", st)
	}
}
