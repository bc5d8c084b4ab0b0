package routeguide

import (
	"container/list"
	"context"
	"sync"
)

// Note is a message left at a location.
type Note struct {
	Location Point
	Message  string
}

// NoteStore keeps RouteChat notes where several processes share them
// (PostgreSQL: sqlstore.RouteNotes). Without one, a Handler keeps its notes
// in its own memory (Notes), per process.
type NoteStore interface {
	// Add keeps n — at most a bounded number of notes per location and of
	// locations, the oldest evicted — and returns every note kept at
	// n.Location, oldest first, n last.
	Add(ctx context.Context, n Note) ([]Note, error)
}

// Notes keeps RouteChat notes, shared by every caller, in bounded memory: at
// most perLocation notes at one location (the oldest go first) and at most
// locations locations (the one written least recently goes first).
type Notes struct {
	perLocation int
	locations   int

	mu    sync.Mutex
	byLoc map[Point]*list.Element // value: *locationNotes
	order *list.List              // front: most recently written
}

type locationNotes struct {
	at    Point
	notes []Note
}

// NewNotes returns an empty note store with the given bounds (each at least 1).
func NewNotes(perLocation, locations int) *Notes {
	return &Notes{
		perLocation: max(perLocation, 1),
		locations:   max(locations, 1),
		byLoc:       make(map[Point]*list.Element),
		order:       list.New(),
	}
}

// Add keeps n and returns a copy of every note kept at its location, oldest
// first, n last. The copy lets the caller send without holding the lock.
func (s *Notes) Add(n Note) []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.byLoc[n.Location]
	switch {
	case ok:
		s.order.MoveToFront(el)
	case s.order.Len() >= s.locations:
		// Full: the location written least recently goes, and its entry
		// (list element, notes and their array) is reused for n's, so a
		// store at its bound allocates nothing more for a new location.
		el = s.order.Back()
		old := el.Value.(*locationNotes)
		delete(s.byLoc, old.at)
		clear(old.notes) // the evicted messages are not kept alive
		old.at, old.notes = n.Location, old.notes[:0]
		s.order.MoveToFront(el)
		s.byLoc[n.Location] = el
	default:
		el = s.order.PushFront(&locationNotes{at: n.Location})
		s.byLoc[n.Location] = el
	}
	ln := el.Value.(*locationNotes)
	if len(ln.notes) >= s.perLocation {
		// Drop the oldest in place; the slice never grows past perLocation.
		copy(ln.notes, ln.notes[len(ln.notes)-s.perLocation+1:])
		ln.notes = ln.notes[:s.perLocation-1]
	}
	ln.notes = append(ln.notes, n)
	return append([]Note(nil), ln.notes...)
}

// Len returns how many locations and notes are kept.
func (s *Notes) Len() (locations, notes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for el := s.order.Front(); el != nil; el = el.Next() {
		notes += len(el.Value.(*locationNotes).notes)
	}
	return s.order.Len(), notes
}
