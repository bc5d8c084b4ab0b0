package h2

import (
	"testing"
	"unsafe"
)

// TestStreamSizeClass keeps the per-request allocation in the 768-byte
// size class: 760 bytes, as an object with pointers over 512 bytes
// carries an 8-byte header in its allocation. Every call allocates one
// stream, and the bytes a call allocates set how often the garbage
// collector runs (about a fifth of a unary call's CPU on one core,
// BENCHMARKS.md): the next class up is 896 bytes, and the one before this
// layout was 1152. A field that does not fit belongs in a separate
// allocation made only when it is used (as outcome's final-frame buffer
// is), or in the padding of the small fields' groups.
func TestStreamSizeClass(t *testing.T) {
	if size := unsafe.Sizeof(stream{}); size > 760 {
		t.Fatalf("stream is %d bytes: over the 768-byte size class with its 8-byte header (streamCtx %d, responseWriter %d, outcome.Record %d)",
			size, unsafe.Sizeof(streamCtx{}), unsafe.Sizeof(responseWriter{}), unsafe.Sizeof(stream{}.rec))
	}
}
