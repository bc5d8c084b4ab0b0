package main

import (
	"slices"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// The load generator's requests carry their headers as gRPC clients'
// do: the first block adds every field to the dynamic table, later ones
// name them by index, and a decoder that saw the first reads the same
// fields from every later one.
func TestHeaderBlocksIndexLikeGRPCClients(t *testing.T) {
	first, later := headerBlocks("http", "/teams.v1.TeamsService/GetTeam", "127.0.0.1:50051", protoGRPC, "grpc-timeout", "5S")
	dec := hpack.NewDecoder(4096, nil)
	want, err := dec.DecodeFull(first)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 9 {
		t.Fatalf("first block: %d fields, want 9: %v", len(want), want)
	}
	for i := range 3 {
		got, err := dec.DecodeFull(later)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("later block %d decodes to %v, want %v", i, got, want)
		}
	}
	// One byte a field: every field is an index into the table.
	if len(later) != len(want) {
		t.Errorf("later block is %d bytes for %d fields, want one byte each (indexed)", len(later), len(want))
	}
}
