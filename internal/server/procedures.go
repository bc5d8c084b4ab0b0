package server

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/switchyard/switchyard/internal/health"
	"github.com/switchyard/switchyard/internal/reflection"
)

// Procedure is one method the server serves.
type Procedure struct {
	// Path is "/pkg.Service/Method", as requests name it.
	Path string
	// Unary is set for methods that stream neither way.
	Unary bool
}

// unregistered are the methods of the services served whose descriptors
// in the protobuf registry are not what is served, or which put none
// there: gRPC health (internal/health serves Check and Watch; grpc-go's
// descriptor, whose messages it uses, lists List as well) and reflection
// (internal/reflection).
var unregistered = map[string][]Procedure{
	health.ServiceName: {
		{Path: "/" + health.ServiceName + "/Check", Unary: true},
		{Path: "/" + health.ServiceName + "/Watch"},
	},
	reflection.ServiceV1:      {{Path: "/" + reflection.ServiceV1 + "/" + reflection.Method}},
	reflection.ServiceV1Alpha: {{Path: "/" + reflection.ServiceV1Alpha + "/" + reflection.Method}},
}

// proceduresOf lists the methods of services (full names): from the
// protobuf registry, where every generated service registers itself, or
// from unregistered. Services found in neither have no procedures listed.
func proceduresOf(services []string) []Procedure {
	var procs []Procedure
	for _, name := range services {
		if known, ok := unregistered[name]; ok {
			procs = append(procs, known...)
			continue
		}
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			continue
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			continue
		}
		for i := range sd.Methods().Len() {
			m := sd.Methods().Get(i)
			procs = append(procs, Procedure{
				Path:  "/" + name + "/" + string(m.Name()),
				Unary: !m.IsStreamingClient() && !m.IsStreamingServer(),
			})
		}
	}
	return procs
}

// paths returns the paths of procs, of the unary ones only with unary set.
func paths(procs []Procedure, unary bool) []string {
	var out []string
	for _, p := range procs {
		if p.Unary || !unary {
			out = append(out, p.Path)
		}
	}
	return out
}

// noSideEffects reports whether procedure ("/pkg.Service/Method") is
// declared with idempotency_level NO_SIDE_EFFECTS: what has its generated
// connect handler take Connect's GET requests.
func noSideEffects(procedure string) bool {
	name := strings.ReplaceAll(strings.TrimPrefix(procedure, "/"), "/", ".")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return false
	}
	m, ok := d.(protoreflect.MethodDescriptor)
	if !ok {
		return false
	}
	opts, ok := m.Options().(*descriptorpb.MethodOptions)
	return ok && opts.GetIdempotencyLevel() == descriptorpb.MethodOptions_NO_SIDE_EFFECTS
}
