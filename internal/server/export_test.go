package server

import (
	"maps"
	"slices"
)

// DirectUnary lists the procedures s serves through internal/grpcunary.
func DirectUnary(s *Server) []string { return slices.Sorted(maps.Keys(s.unary)) }
