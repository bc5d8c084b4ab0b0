package routeguide

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDefaultDB(t *testing.T) {
	db := DefaultDB()
	named := 0
	for _, f := range db.Features() {
		if f.Name != "" {
			named++
		}
	}
	if db.Len() != 100 || named != 64 {
		t.Errorf("embedded database has %d features (%d named), want 100 (64 named)", db.Len(), named)
	}
	if f := db.FeatureAt(Point{409146138, -746188906}); f.Name != "Berkshire Valley Management Area Trail, Jefferson, NJ, USA" {
		t.Errorf("FeatureAt(known) = %+v", f)
	}
	if f := db.FeatureAt(Point{1, 2}); f.Name != "" || f.Location != (Point{1, 2}) {
		t.Errorf("FeatureAt(unknown) = %+v, want nameless feature at the point", f)
	}
}

func TestLoadDB(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	db, err := LoadDB(write("ok.json", `[{"location":{"latitude":1,"longitude":2},"name":"x"},{"location":{"latitude":1,"longitude":2},"name":""}]`))
	if err != nil || db.Len() != 2 || db.CountAt(Point{1, 2}) != 2 || db.FeatureAt(Point{1, 2}).Name != "x" {
		t.Errorf("LoadDB(two features at one point) = %v, %v", db, err)
	}
	for name, content := range map[string]string{
		"bad.json":    `{"not": "an array"}`,
		"range.json":  `[{"location":{"latitude":900000001,"longitude":0},"name":"north of the pole"}]`,
		"fields.json": `[{"loc":{"latitude":1,"longitude":2}}]`,
	} {
		if _, err := LoadDB(write(name, content)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("LoadDB(%s) error = %v, want an error naming the file", name, err)
		}
	}
	if _, err := LoadDB(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("LoadDB(missing file) succeeded")
	}
}

func TestRectContainsInclusive(t *testing.T) {
	r := Rect{Lo: Point{10, 20}, Hi: Point{30, 40}}
	swapped := Rect{Lo: r.Hi, Hi: r.Lo}
	for _, tt := range []struct {
		p    Point
		want bool
	}{
		{Point{10, 20}, true}, {Point{30, 40}, true}, {Point{10, 40}, true}, {Point{20, 30}, true},
		{Point{9, 20}, false}, {Point{31, 40}, false}, {Point{20, 19}, false}, {Point{20, 41}, false},
	} {
		if got := r.Contains(tt.p); got != tt.want {
			t.Errorf("%v.Contains(%v) = %v", r, tt.p, got)
		}
		if got := swapped.Contains(tt.p); got != tt.want {
			t.Errorf("swapped %v.Contains(%v) = %v", swapped, tt.p, got)
		}
	}
}

func TestPointValidate(t *testing.T) {
	for _, p := range []Point{{900000000, 1800000000}, {-900000000, -1800000000}, {0, 0}} {
		if err := p.Validate(); err != nil {
			t.Errorf("%v: %v", p, err)
		}
	}
	for _, p := range []Point{{900000001, 0}, {-900000001, 0}, {0, 1800000001}, {0, -1800000001}} {
		if err := p.Validate(); err == nil {
			t.Errorf("%v: want an error", p)
		}
	}
}

// Expected distances are computed by hand: one degree of arc on a sphere
// of radius 6371000 m is 6371000·π/180 = 111194.93 m.
func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		p, q Point
		want int32
	}{
		{Point{0, 0}, Point{0, 10000000}, 111194},     // 1° of longitude on the equator
		{Point{0, 0}, Point{10000000, 0}, 111194},     // 1° of latitude
		{Point{0, 0}, Point{0, 2000000}, 22238},       // 0.2°: 22238.99 truncated
		{Point{0, 0}, Point{900000000, 0}, 10007543},  // equator to pole: π/2·R = 10007543.4
		{Point{0, 0}, Point{0, 1800000000}, 20015086}, // half the equator: π·R = 20015086.8
		{Point{407838351, -746143763}, Point{407838351, -746143763}, 0},
	} {
		if got := Distance(tt.p, tt.q); got != tt.want {
			t.Errorf("Distance(%v, %v) = %d, want %d", tt.p, tt.q, got, tt.want)
		}
		if got := Distance(tt.q, tt.p); got != tt.want {
			t.Errorf("Distance(%v, %v) = %d, want %d (symmetric)", tt.q, tt.p, got, tt.want)
		}
	}
}

func TestRecorderTruncatesEachSegment(t *testing.T) {
	db := DefaultDB()
	start := time.Unix(1000, 0)
	r := NewRecorder(db, start)
	// Five 0.2° segments: 5 × 22238 = 111190, not trunc(111194.93).
	for i := range int32(6) {
		r.Add(Point{0, i * 2000000})
	}
	r.Add(Point{407838351, -746143763}) // a feature
	got := r.Finish(start.Add(2999 * time.Millisecond))
	want := Summary{PointCount: 7, FeatureCount: 1, Distance: 111190 + Distance(Point{0, 10000000}, Point{407838351, -746143763}), ElapsedTime: 2}
	if got != want {
		t.Errorf("summary = %+v, want %+v", got, want)
	}
	if empty := NewRecorder(db, start).Finish(start); empty != (Summary{}) {
		t.Errorf("empty route = %+v", empty)
	}
}

func TestNotesBounds(t *testing.T) {
	n := NewNotes(3, 2)
	a, b, c := Point{1, 1}, Point{2, 2}, Point{3, 3}
	for i := range 5 {
		n.Add(Note{a, fmt.Sprint("a", i)})
	}
	got := n.Add(Note{a, "a5"})
	if want := []Note{{a, "a3"}, {a, "a4"}, {a, "a5"}}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("notes at a = %v, want the newest 3 %v", got, want)
	}
	n.Add(Note{b, "b0"})
	n.Add(Note{a, "a6"}) // a is now the most recently written location
	// c evicts b, taking over b's entry: c holds c0 alone, nothing of b's.
	if got := n.Add(Note{c, "c0"}); len(got) != 1 || got[0] != (Note{c, "c0"}) {
		t.Errorf("c in b's place = %v, want only the new note", got)
	}
	if got := n.Add(Note{b, "b1"}); len(got) != 1 || got[0].Message != "b1" {
		t.Errorf("b after eviction = %v, want only the new note", got)
	}
	if locs, notes := n.Len(); locs != 2 || notes > 2*3 {
		t.Errorf("kept %d locations, %d notes; want 2 locations, at most 6 notes", locs, notes)
	}
}

func TestNotesConcurrent(t *testing.T) {
	n := NewNotes(1000, 10)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 100 {
				got := n.Add(Note{Point{0, 0}, fmt.Sprint(w, "-", i)})
				if last := got[len(got)-1].Message; last != fmt.Sprint(w, "-", i) {
					t.Errorf("last note = %q, want the one just added", last)
					return
				}
			}
		})
	}
	wg.Wait()
	if _, notes := n.Len(); notes != 800 {
		t.Errorf("kept %d notes, want 800", notes)
	}
}
