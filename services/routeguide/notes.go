package routeguide

import (
	"container/list"
	"context"
	"errors"
	"sync"
)

// Note is a message left at a location.
type Note struct {
	Location Point
	Message  string
}

// NoteOverheadBytes is what Notes counts for a kept note beyond its
// message's bytes: its 24-byte slot in its location's array, room for that
// array's growth and the rounding of the message's allocation. The
// locations' own entries (list element, entry and map slot, about 150
// bytes, and an array of up to 8 notes kept for reuse) are bounded by the
// count of locations instead: about 3.5 MB at 10 000.
const NoteOverheadBytes = 64

// noteCost is what n counts against a Notes byte budget.
func noteCost(n Note) int64 { return int64(len(n.Message)) + NoteOverheadBytes }

// NoteStore keeps RouteChat notes where several processes share them
// (PostgreSQL: sqlstore.RouteNotes). Without one, a Handler keeps its notes
// in its own memory (Notes), per process.
type NoteStore interface {
	// Add keeps n — at most a bounded number of notes per location and of
	// locations, the oldest evicted — and returns every note kept at
	// n.Location, oldest first, n last. Handler calls it only with a
	// message of at most Options.NoteMaxBytes. A failure that a retry may
	// get past (the database unreachable, busy or not answering) wraps
	// ErrNotesUnavailable.
	Add(ctx context.Context, n Note) ([]Note, error)
}

// ErrNotesUnavailable is wrapped around a NoteStore's failure that a retry
// may get past; RouteChat answers it UNAVAILABLE.
var ErrNotesUnavailable = errors.New("the shared RouteChat notes are unavailable for now")

// ErrNoteMaybeKept is wrapped, with ErrNotesUnavailable, around a
// NoteStore's failure after the note may have been kept all the same (its
// COMMIT may have reached the database): RouteChat says so, and asks
// gRPC clients not to retry it, which would keep the note twice.
var ErrNoteMaybeKept = errors.New("the note may have been kept")

// Notes keeps RouteChat notes, shared by every caller, in bounded memory: at
// most perLocation notes at one location (the oldest go first), at most
// locations locations (the one written least recently goes first), and at
// most maxBytes bytes of notes, each counted as its message's length plus
// NoteOverheadBytes: over that, whole locations go, the one written least
// recently first, but never the one being written (which loses its oldest
// notes instead, when it alone is over). A note whose cost exceeds maxBytes
// is kept alone; Handler refuses such notes before they get here.
type Notes struct {
	perLocation int
	locations   int
	maxBytes    int64

	mu    sync.Mutex
	bytes int64                   // the cost of every note kept
	byLoc map[Point]*list.Element // value: *locationNotes
	// order holds the live locations, front most recently written, then
	// the spare entries of locations evicted for the byte budget, from
	// firstSpare (nil: none) to the back. A new location takes a spare
	// entry before it allocates one, so the list never holds more than
	// locations entries.
	order      *list.List
	firstSpare *list.Element
}

type locationNotes struct {
	at    Point
	notes []Note
	bytes int64 // the cost of notes
}

// NewNotes returns an empty note store with the given bounds (each at least
// 1).
func NewNotes(perLocation, locations, maxBytes int) *Notes {
	return &Notes{
		perLocation: max(perLocation, 1),
		locations:   max(locations, 1),
		maxBytes:    int64(max(maxBytes, 1)),
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
	case s.firstSpare != nil:
		// The entry of a location evicted for the byte budget, emptied then.
		el = s.firstSpare
		s.firstSpare = el.Next()
		el.Value.(*locationNotes).at = n.Location
		s.order.MoveToFront(el)
		s.byLoc[n.Location] = el
	case len(s.byLoc) >= s.locations:
		// Full: the location written least recently goes, and its entry
		// (list element, notes and their array) is reused for n's, so a
		// store at its bound allocates nothing more for a new location.
		el = s.order.Back()
		s.evict(el)
		el.Value.(*locationNotes).at = n.Location
		s.order.MoveToFront(el)
		s.byLoc[n.Location] = el
	default:
		el = s.order.PushFront(&locationNotes{at: n.Location})
		s.byLoc[n.Location] = el
	}
	ln := el.Value.(*locationNotes)
	if len(ln.notes) >= s.perLocation {
		s.dropOldest(ln, len(ln.notes)-s.perLocation+1)
	}
	ln.notes = append(ln.notes, n)
	cost := noteCost(n)
	ln.bytes += cost
	s.bytes += cost
	for s.bytes > s.maxBytes {
		lru := s.order.Back()
		if s.firstSpare != nil {
			lru = s.firstSpare.Prev()
		}
		if lru == el {
			// Only n's location is left: it keeps n at least.
			if len(ln.notes) > 1 {
				s.dropOldest(ln, 1)
				continue
			}
			break
		}
		// The live location written least recently is the last before
		// the spare entries: emptied, it becomes the first of them.
		s.evict(lru)
		s.firstSpare = lru
	}
	return append([]Note(nil), ln.notes...)
}

// spareNotesCap is the largest notes array an evicted location's entry
// keeps for the next location. A location at one note (RouteChat's usual
// workload) so allocates nothing, and entries that held many notes do not
// keep their arrays (up to 128 notes of 24 bytes at the default bound)
// for locations that hold few, outside the byte budget.
const spareNotesCap = 8

// evict forgets el's location and its notes, keeping the entry (and a
// small array) for another location.
func (s *Notes) evict(el *list.Element) {
	ln := el.Value.(*locationNotes)
	delete(s.byLoc, ln.at)
	if cap(ln.notes) > spareNotesCap {
		ln.notes = nil
	} else {
		clear(ln.notes) // the evicted messages are not kept alive
		ln.notes = ln.notes[:0]
	}
	s.bytes -= ln.bytes
	ln.bytes = 0
}

// dropOldest drops the k oldest notes of ln in place; its array never
// grows past perLocation.
func (s *Notes) dropOldest(ln *locationNotes, k int) {
	for _, old := range ln.notes[:k] {
		cost := noteCost(old)
		ln.bytes -= cost
		s.bytes -= cost
	}
	copy(ln.notes, ln.notes[k:])
	clear(ln.notes[len(ln.notes)-k:]) // the dropped messages are not kept alive
	ln.notes = ln.notes[:len(ln.notes)-k]
}

// Len returns how many locations and notes are kept.
func (s *Notes) Len() (locations, notes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, el := range s.byLoc {
		notes += len(el.Value.(*locationNotes).notes)
	}
	return len(s.byLoc), notes
}

// Bytes returns the cost of the notes kept, as the byte budget counts it:
// their messages' bytes plus NoteOverheadBytes each. It is at most the
// budget.
func (s *Notes) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}
