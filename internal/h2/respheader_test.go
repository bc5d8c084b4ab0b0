package h2

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// A snapshot is the handler's fields as they were: what the handler does
// to its map afterwards, in place or not, does not reach it; trailers
// stay out; and one taken from the pool holds nothing of the one before.
func TestHeaderSnap(t *testing.T) {
	h := http.Header{"A": {"1"}, "B": {"2", "3"}, http.TrailerPrefix + "T": {"t"}}
	s := takeSnap(h)
	h["A"][0] = "changed"
	h.Add("B", "4")
	h.Set("C", "new")
	if vv, ok := s.get("A"); !ok || !slices.Equal(vv, []string{"1"}) {
		t.Errorf("A %q after the map changed in place, want [1]", vv)
	}
	if vv, _ := s.get("B"); !slices.Equal(vv, []string{"2", "3"}) {
		t.Errorf("B %q, want [2 3]", vv)
	}
	if _, ok := s.get("C"); ok || len(s.fields) != 2 {
		t.Errorf("fields %v, want A and B alone (no trailer, nothing added later)", s.fields)
	}
	// Values share one slice: appending to one must not reach another.
	a, _ := s.get("A")
	_ = append(a, "spill")
	if vv, _ := s.get("B"); !slices.Equal(vv, []string{"2", "3"}) {
		t.Errorf("B %q after an append to A's values, want [2 3]", vv)
	}
	s.set("B", []string{"5"})
	s.del("A")
	if vv, _ := s.get("B"); len(s.fields) != 1 || s.first("B") != "5" || len(vv) != 1 {
		t.Errorf("after set and del: %v, want B [5] alone", s.fields)
	}
	if s.first("A") != "" {
		t.Error("first of a deleted key is not empty")
	}
	s.release()
	for range 10 { // the pool may hand back the same one
		s = takeSnap(http.Header{"D": {"d"}})
		if len(s.fields) != 1 || s.first("D") != "d" || len(s.vals) != 1 {
			t.Fatalf("a snapshot from the pool holds %v (values %q)", s.fields, s.vals)
		}
		s.release()
	}
}

// The Date value is this second's (or, in the moments before the timer
// runs, the one before), and the clock stops when nothing asks for it.
// The clock is the process's: a server left running by another test and
// still answering would keep it going, and this test would fail.
func TestDateClock(t *testing.T) {
	before := time.Now().Truncate(time.Second).Add(-time.Second)
	d, err := http.ParseTime(httpDate())
	if err != nil || d.Before(before) || d.After(time.Now()) {
		t.Fatalf("date %v (%v), want this second's", d, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for dateClock.text.Load() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the clock still runs 5 s after its last use")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before = time.Now().Truncate(time.Second).Add(-time.Second)
	if d, err := http.ParseTime(httpDate()); err != nil || d.Before(before) {
		t.Errorf("date %v (%v) after the clock stopped, want this second's", d, err)
	}
}
