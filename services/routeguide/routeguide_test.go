package routeguide

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
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
	metres := 111190 + Distance(Point{0, 10000000}, Point{407838351, -746143763})
	want := Summary{PointCount: 7, FeatureCount: 1, Distance: metres, Metres: int64(metres), ElapsedTime: 2}
	if got != want {
		t.Errorf("summary = %+v, want %+v", got, want)
	}
	if empty := NewRecorder(db, start).Finish(start); empty != (Summary{}) {
		t.Errorf("empty route = %+v", empty)
	}
}

func TestNotesBounds(t *testing.T) {
	n := NewNotes(3, 2, 1<<20)
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
	n := NewNotes(1000, 10, 1<<20)
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

// cost recounts what the notes kept count against the byte budget, from
// the notes themselves.
func (s *Notes) cost() (bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, el := range s.byLoc {
		for _, n := range el.Value.(*locationNotes).notes {
			bytes += int64(len(n.Message)) + NoteOverheadBytes
		}
	}
	return bytes
}

func (s *Notes) has(p Point) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.byLoc[p]
	return ok
}

// Over the byte budget whole locations go, the one written least recently
// first, never the one being written: it loses its oldest notes instead.
func TestNotesByteBudget(t *testing.T) {
	const budget = 10_000
	n := NewNotes(100, 100, budget)
	msg := func(c byte, size int) string { return strings.Repeat(string(c), size) }
	add := func(p Point, m string) []Note {
		t.Helper()
		got := n.Add(Note{p, m})
		if b := n.Bytes(); b > budget || b != n.cost() {
			t.Fatalf("after a note of %d bytes at %v: %d bytes counted, %d kept; budget %d", len(m), p, b, n.cost(), budget)
		}
		if !n.has(p) || got[len(got)-1].Message != m {
			t.Fatalf("the location just written, %v, lost its note", p)
		}
		return got
	}
	a, b, c, d, e := Point{1, 1}, Point{2, 2}, Point{3, 3}, Point{4, 4}, Point{5, 5}
	for _, p := range []Point{a, b, c, d} {
		add(p, msg('x', 2000)) // 2064 bytes each, 8256 in all
	}
	add(a, msg('y', 2000)) // a is written again: b is now the oldest, and goes
	if n.has(b) || !n.has(c) {
		t.Errorf("over the budget: b (written least recently) kept %v, c kept %v; want b evicted, c kept", n.has(b), n.has(c))
	}
	add(e, msg('z', 2000)) // then c
	if n.has(c) || !n.has(a) || !n.has(d) {
		t.Errorf("second eviction: c kept %v, a %v, d %v; want only c evicted", n.has(c), n.has(a), n.has(d))
	}
	if locs, notes := n.Len(); locs != 3 || notes != 4 {
		t.Errorf("kept %d locations, %d notes; want 3 (a, d, e), 4", locs, notes)
	}
	// A note that leaves d alone over the budget: every other location
	// goes, then d's own older note.
	got := add(d, msg('w', 9000))
	if len(got) != 1 || n.has(a) || n.has(e) {
		t.Errorf("a 9000-byte note at d: d keeps %d notes, a kept %v, e kept %v; want d alone with the new note", len(got), n.has(a), n.has(e))
	}
	// A new location takes an evicted location's entry.
	add(Point{6, 6}, "hi")
	if locs, notes := n.Len(); locs != 2 || notes != 2 || n.Bytes() != 9000+2+2*NoteOverheadBytes {
		t.Errorf("kept %d locations, %d notes, %d bytes; want 2, 2, %d", locs, notes, n.Bytes(), 9000+2+2*NoteOverheadBytes)
	}
}

// Large notes at many locations, against a model of the three bounds: the
// same notes are kept and returned, and the count and byte bounds hold
// after every note.
func TestNotesBoundsModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		per, locs := 1+rng.IntN(6), 1+rng.IntN(30)
		budget := 200 + rng.IntN(20_000)
		n := NewNotes(per, locs, budget)
		m := noteModel{per: per, locs: locs, max: int64(budget), notes: map[Point][]Note{}}
		for i := range 1000 {
			p := Point{int32(rng.IntN(40)), 0}
			size := rng.IntN(budget - NoteOverheadBytes + 1)
			if rng.IntN(4) > 0 {
				size = rng.IntN(100)
			}
			note := Note{p, fmt.Sprintf("%d-%d-%s", round, i, strings.Repeat(".", size))[:max(size, 1)]}
			if len(note.Message)+NoteOverheadBytes > budget {
				note.Message = note.Message[:budget-NoteOverheadBytes]
			}
			got, want := n.Add(note), m.add(note)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("round %d note %d: Add = %d notes, model %d", round, i, len(got), len(want))
			}
			gotLocs, gotNotes := n.Len()
			wantLocs, wantNotes := m.len()
			if gotLocs != wantLocs || gotNotes != wantNotes || n.Bytes() != m.bytes() || n.Bytes() != n.cost() {
				t.Fatalf("round %d note %d: %d locations, %d notes, %d bytes (%d recounted); model %d, %d, %d",
					round, i, gotLocs, gotNotes, n.Bytes(), n.cost(), wantLocs, wantNotes, m.bytes())
			}
			if gotLocs > locs || n.Bytes() > int64(budget) || n.order.Len() > locs {
				t.Fatalf("round %d note %d: %d locations (%d entries), %d bytes; bounds %d, %d", round, i, gotLocs, n.order.Len(), n.Bytes(), locs, budget)
			}
		}
	}
}

// noteModel keeps notes as Notes does, the obvious way.
type noteModel struct {
	per, locs int
	max       int64
	order     []Point // most recently written first
	notes     map[Point][]Note
}

func (m *noteModel) add(n Note) []Note {
	if i := slices.Index(m.order, n.Location); i >= 0 {
		m.order = slices.Delete(m.order, i, i+1)
	} else if len(m.order) >= m.locs {
		delete(m.notes, m.order[len(m.order)-1])
		m.order = m.order[:len(m.order)-1]
	}
	m.order = slices.Insert(m.order, 0, n.Location)
	kept := append(m.notes[n.Location], n)
	if len(kept) > m.per {
		kept = kept[len(kept)-m.per:]
	}
	m.notes[n.Location] = kept
	for m.bytes() > m.max {
		if last := m.order[len(m.order)-1]; last != n.Location {
			delete(m.notes, last)
			m.order = m.order[:len(m.order)-1]
		} else if len(m.notes[last]) > 1 {
			m.notes[last] = m.notes[last][1:]
		} else {
			break
		}
	}
	return slices.Clone(m.notes[n.Location])
}

func (m *noteModel) len() (locations, notes int) {
	for _, kept := range m.notes {
		notes += len(kept)
	}
	return len(m.notes), notes
}

func (m *noteModel) bytes() (b int64) {
	for _, kept := range m.notes {
		for _, n := range kept {
			b += int64(len(n.Message)) + NoteOverheadBytes
		}
	}
	return b
}

// At its bounds the store allocates nothing but the copy Add returns,
// whether a new location evicts for the count of locations or for bytes.
func TestNotesAddAllocs(t *testing.T) {
	for name, n := range map[string]*Notes{
		"count": NewNotes(100, 64, 1<<20),
		"bytes": NewNotes(100, 1000, 16*(NoteOverheadBytes+5)),
	} {
		i := 0
		add := func() {
			i++
			n.Add(Note{Point{int32(i), 0}, "hello"})
		}
		for range 2000 {
			add()
		}
		if allocs := testing.AllocsPerRun(1000, add); allocs > 1 {
			t.Errorf("%s bound: %v allocations a note, want 1 (the copy returned)", name, allocs)
		}
		if locs, _ := n.Len(); locs != 16 && locs != 64 {
			t.Errorf("%s bound: %d locations kept", name, locs)
		}
	}
}

// The per-note limit is at most what fits the in-memory budget, and says
// so; a shared store keeps its own.
func TestChatNoteLimitFitsBudget(t *testing.T) {
	h := NewHandler(DefaultDB(), Options{NotesMaxBytes: 1000})
	ctx := context.Background()
	if _, err := h.Chat(ctx, Note{Message: strings.Repeat("a", 1000-NoteOverheadBytes)}); err != nil {
		t.Errorf("a note that fits the budget: %v", err)
	}
	_, err := h.Chat(ctx, Note{Message: strings.Repeat("a", 1000-NoteOverheadBytes+1)})
	if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "the limit is 936 (-chat-notes-max-bytes less 64)") {
		t.Errorf("a note over the budget: %v, want RESOURCE_EXHAUSTED naming -chat-notes-max-bytes", err)
	}
	if b := h.Notes().Bytes(); b != 1000 {
		t.Errorf("%d bytes kept, want 1000", b)
	}
}
