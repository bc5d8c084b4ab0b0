package routeguide

import (
	"context"
	"testing"
)

// BenchmarkChatInMemory is RouteChat's domain step on the default store
// (notes in memory): keep a note, copy the location's notes.
func BenchmarkChatInMemory(b *testing.B) {
	h := NewHandler(DefaultDB(), Options{})
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := h.Chat(ctx, Note{Location: Point{Latitude: int32(i % 64)}, Message: "hello"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatNewLocations is the same at the store's bound: every note at
// a location not kept, so each evicts the location written least recently
// (the benchmark's RouteChat workload, a fresh location per note).
func BenchmarkChatNewLocations(b *testing.B) {
	h := NewHandler(DefaultDB(), Options{NoteLocations: 64})
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := h.Chat(ctx, Note{Location: Point{Latitude: int32(i)}, Message: "hello"}); err != nil {
			b.Fatal(err)
		}
	}
}
