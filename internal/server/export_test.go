package server

import (
	"maps"
	"slices"
)

// DirectUnary lists the procedures s serves through internal/grpcunary.
func DirectUnary(s *Server) []string { return slices.Sorted(maps.Keys(s.unary)) }

// DirectGet lists the procedures whose Connect GETs s serves through
// internal/grpcunary.
func DirectGet(s *Server) []string { return slices.Sorted(slices.Values(s.unaryGet)) }
