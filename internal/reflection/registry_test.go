package reflection

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// testImage has what the repository's protos lack: imports (a.proto →
// b.proto → c.proto, and a.proto → c.proto) and extensions, one declared
// at file level and one nested in a message.
func testImage(t *testing.T) *registry {
	t.Helper()
	str, i32 := proto.String, proto.Int32
	optional := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	typInt := descriptorpb.FieldDescriptorProto_TYPE_INT32.Enum()
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		{
			Name: str("c.proto"), Package: str("x"), Syntax: str("proto2"),
			MessageType: []*descriptorpb.DescriptorProto{{
				Name:           str("Base"),
				ExtensionRange: []*descriptorpb.DescriptorProto_ExtensionRange{{Start: i32(100), End: i32(200)}},
			}},
		},
		{
			Name: str("b.proto"), Package: str("x"), Syntax: str("proto2"), Dependency: []string{"c.proto"},
			Extension: []*descriptorpb.FieldDescriptorProto{{Name: str("top"), Number: i32(100), Label: optional, Type: typInt, Extendee: str(".x.Base")}},
		},
		{
			Name: str("a.proto"), Package: str("x.y"), Syntax: str("proto2"), Dependency: []string{"b.proto", "c.proto"},
			MessageType: []*descriptorpb.DescriptorProto{{
				Name:       str("Outer"),
				NestedType: []*descriptorpb.DescriptorProto{{Name: str("Inner")}},
				EnumType:   []*descriptorpb.EnumDescriptorProto{{Name: str("Kind"), Value: []*descriptorpb.EnumValueDescriptorProto{{Name: str("KIND_A"), Number: i32(0)}}}},
				Extension:  []*descriptorpb.FieldDescriptorProto{{Name: str("nested"), Number: i32(101), Label: optional, Type: typInt, Extendee: str(".x.Base")}},
			}},
			Service: []*descriptorpb.ServiceDescriptorProto{{Name: str("S"), Method: []*descriptorpb.MethodDescriptorProto{{Name: str("M"), InputType: str(".x.y.Outer"), OutputType: str(".x.y.Outer")}}}},
		},
	}}
	b, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseImage(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ask answers one request, encoded as a client would, and decodes the
// answer: the names of the files sent, or the error.
func ask(t *testing.T, r *registry, sent map[string]bool, fields func(b []byte) []byte) (names []string, errCode int32, errMsg string, numbers []int32) {
	t.Helper()
	var req request
	if err := req.unmarshal(fields(nil)); err != nil {
		t.Fatal(err)
	}
	res := (&handler{}).answer(r, &req, sent)
	err := eachField(res.b, func(num protowire.Number, v []byte, _ uint64) error {
		switch num {
		case resFiles:
			return eachField(v, func(_ protowire.Number, fd []byte, _ uint64) error {
				var f descriptorpb.FileDescriptorProto
				if err := proto.Unmarshal(fd, &f); err != nil {
					return err
				}
				names = append(names, f.GetName())
				return nil
			})
		case resError:
			return eachField(v, func(num protowire.Number, v []byte, n uint64) error {
				if num == 1 {
					errCode = int32(n)
				} else {
					errMsg = string(v)
				}
				return nil
			})
		case resExtensionNums:
			return eachField(v, func(num protowire.Number, _ []byte, n uint64) error {
				if num == 2 {
					numbers = append(numbers, int32(n))
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names, errCode, errMsg, numbers
}

func TestDependenciesOncePerStream(t *testing.T) {
	r := testImage(t)
	sent := map[string]bool{}
	byName := func(name string) func([]byte) []byte {
		return func(b []byte) []byte { return appendString(b, reqFileByFilename, name) }
	}
	if names, _, msg, _ := ask(t, r, sent, byName("a.proto")); !slices.Equal(names, []string{"a.proto", "b.proto", "c.proto"}) {
		t.Errorf("a.proto sent %q (%s), want it and its imports, each once", names, msg)
	}
	// Asked again, a file is sent again, but not the imports already sent.
	if names, _, _, _ := ask(t, r, sent, byName("b.proto")); !slices.Equal(names, []string{"b.proto"}) {
		t.Errorf("then b.proto sent %q, want b.proto alone", names)
	}
	// A new stream starts afresh.
	if names, _, _, _ := ask(t, r, map[string]bool{}, byName("b.proto")); !slices.Equal(names, []string{"b.proto", "c.proto"}) {
		t.Errorf("b.proto on a new stream sent %q, want b.proto, c.proto", names)
	}
}

func TestSymbolsAndExtensions(t *testing.T) {
	r := testImage(t)
	for symbol, file := range map[string]string{
		"x.y.Outer": "a.proto", "x.y.Outer.Inner": "a.proto", "x.y.Outer.Kind": "a.proto",
		"x.y.Outer.KIND_A": "a.proto", "x.y.Outer.nested": "a.proto", "x.y.S": "a.proto", "x.y.S.M": "a.proto",
		"x.top": "b.proto", "x.Base": "c.proto",
	} {
		names, _, msg, _ := ask(t, r, map[string]bool{}, func(b []byte) []byte { return appendString(b, reqFileContaining, symbol) })
		if len(names) == 0 || names[0] != file {
			t.Errorf("%s: sent %q (%s), want %s first", symbol, names, msg, file)
		}
	}
	ext := func(typ string, n int32) func([]byte) []byte {
		return func(b []byte) []byte {
			var e []byte
			e = appendString(e, 1, typ)
			e = appendVarint(e, 2, uint64(n))
			return appendBytes(b, reqFileOfExtension, e)
		}
	}
	if names, _, _, _ := ask(t, r, map[string]bool{}, ext("x.Base", 101)); len(names) == 0 || names[0] != "a.proto" {
		t.Errorf("extension 101 of x.Base: sent %q, want a.proto", names)
	}
	if names, _, _, _ := ask(t, r, map[string]bool{}, ext("x.Base", 100)); len(names) == 0 || names[0] != "b.proto" {
		t.Errorf("extension 100 of x.Base: sent %q, want b.proto", names)
	}
	if _, code, msg, _ := ask(t, r, map[string]bool{}, ext("x.Base", 102)); code != codeNotFound || !strings.Contains(msg, "no extension 102") {
		t.Errorf("extension 102 of x.Base: error %d %q, want NOT_FOUND", code, msg)
	}
	_, _, _, numbers := ask(t, r, map[string]bool{}, func(b []byte) []byte { return appendString(b, reqExtensionNumbers, "x.Base") })
	slices.Sort(numbers)
	if !slices.Equal(numbers, []int32{100, 101}) {
		t.Errorf("extension numbers of x.Base = %v, want [100 101]", numbers)
	}
}

func TestCorruptImage(t *testing.T) {
	for name, b := range map[string][]byte{
		"truncated":    {0x0a, 0x05, 1},
		"unnamed file": {0x0a, 0x02, 0x12, 0x00},
		"duplicate symbol": func() []byte {
			f, _ := proto.Marshal(&descriptorpb.FileDescriptorProto{Name: proto.String("d.proto"), MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("M")}, {Name: proto.String("M")}}})
			return appendBytes(nil, 1, f)
		}(),
	} {
		if _, err := parseImage(b); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("%s: parseImage = %v, want an error", name, err)
		}
	}
	// The embedded image itself parses.
	if _, err := loadRegistry(); err != nil {
		t.Fatal(err)
	}
}
