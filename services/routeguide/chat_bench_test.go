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
