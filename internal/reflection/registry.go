package reflection

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// registry indexes the files of the image by name, by the symbols they
// declare and by the extensions they declare. Descriptors are slices of the
// image, never copied.
type registry struct {
	files            map[string]*file
	symbols          map[string]symbol
	extensions       map[extension]*file
	extensionNumbers map[string][]int32 // by extended message
}

// file is one google.protobuf.FileDescriptorProto of the image.
type file struct {
	name string
	raw  []byte
	deps []string
}

type symbol struct {
	file    *file
	message bool
}

// extension is a message's extension by its field number.
type extension struct {
	extendee string
	number   int32
}

// FileDescriptorProto fields, and those of the messages declared in it
// (google/protobuf/descriptor.proto).
const (
	fileName       = 1
	filePackage    = 2
	fileDependency = 3
	fileMessage    = 4
	fileEnum       = 5
	fileService    = 6
	fileExtension  = 7

	// DescriptorProto, ServiceDescriptorProto, EnumDescriptorProto,
	// FieldDescriptorProto and the rest: field 1 is the name.
	declName = 1

	messageField     = 2
	messageNested    = 3
	messageEnum      = 4
	messageExtension = 6
	messageOneof     = 8

	enumValue     = 2
	serviceMethod = 2

	fieldExtendee = 2
	fieldNumber   = 3
)

// parseImage indexes a FileDescriptorSet (field 1: the files).
func parseImage(b []byte) (*registry, error) {
	r := &registry{
		files:            map[string]*file{},
		symbols:          map[string]symbol{},
		extensions:       map[extension]*file{},
		extensionNumbers: map[string][]int32{},
	}
	err := eachField(b, func(num protowire.Number, v []byte, _ uint64) error {
		if num != 1 {
			return nil
		}
		return r.addFile(v)
	})
	if err != nil {
		return nil, fmt.Errorf("reflection: the embedded descriptor image is corrupt: %w", err)
	}
	return r, nil
}

func (r *registry) addFile(raw []byte) error {
	f := &file{raw: raw}
	var pkg string
	type decl struct {
		kind protowire.Number
		v    []byte
	}
	var decls []decl // indexed once the package is known
	err := eachField(raw, func(num protowire.Number, v []byte, _ uint64) error {
		switch num {
		case fileName:
			f.name = string(v)
		case filePackage:
			pkg = string(v)
		case fileDependency:
			f.deps = append(f.deps, string(v))
		case fileMessage, fileEnum, fileService, fileExtension:
			decls = append(decls, decl{num, v})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if f.name == "" || r.files[f.name] != nil {
		return fmt.Errorf("file %q: no name or named twice", f.name)
	}
	r.files[f.name] = f
	for _, d := range decls {
		var err error
		switch d.kind {
		case fileMessage:
			err = r.addMessage(f, pkg, d.v)
		case fileEnum:
			err = r.addEnum(f, pkg, d.v)
		case fileService:
			err = r.addService(f, pkg, d.v)
		case fileExtension:
			err = r.addExtension(f, pkg, d.v)
		}
		if err != nil {
			return fmt.Errorf("file %q: %w", f.name, err)
		}
	}
	return nil
}

// add indexes the declaration of name in scope and returns its full name.
func (r *registry) add(f *file, scope, name string, message bool) (string, error) {
	if name == "" {
		return "", fmt.Errorf("a declaration in %q has no name", scope)
	}
	full := name
	if scope != "" {
		full = scope + "." + name
	}
	if _, ok := r.symbols[full]; ok {
		return "", fmt.Errorf("%s declared twice", full)
	}
	r.symbols[full] = symbol{file: f, message: message}
	return full, nil
}

// name is the name (field 1) of a declaration.
func name(decl []byte) string {
	var n string
	_ = eachField(decl, func(num protowire.Number, v []byte, _ uint64) error {
		if num == declName {
			n = string(v)
		}
		return nil
	})
	return n
}

func (r *registry) addMessage(f *file, scope string, decl []byte) error {
	full, err := r.add(f, scope, name(decl), true)
	if err != nil {
		return err
	}
	return eachField(decl, func(num protowire.Number, v []byte, _ uint64) error {
		switch num {
		case messageField, messageOneof:
			_, err := r.add(f, full, name(v), false)
			return err
		case messageNested:
			return r.addMessage(f, full, v)
		case messageEnum:
			return r.addEnum(f, full, v)
		case messageExtension:
			return r.addExtension(f, full, v)
		}
		return nil
	})
}

// addEnum indexes an enum and its values, which protobuf scopes beside the
// enum rather than in it.
func (r *registry) addEnum(f *file, scope string, decl []byte) error {
	if _, err := r.add(f, scope, name(decl), false); err != nil {
		return err
	}
	return eachField(decl, func(num protowire.Number, v []byte, _ uint64) error {
		if num == enumValue {
			_, err := r.add(f, scope, name(v), false)
			return err
		}
		return nil
	})
}

func (r *registry) addService(f *file, scope string, decl []byte) error {
	full, err := r.add(f, scope, name(decl), false)
	if err != nil {
		return err
	}
	return eachField(decl, func(num protowire.Number, v []byte, _ uint64) error {
		if num == serviceMethod {
			_, err := r.add(f, full, name(v), false)
			return err
		}
		return nil
	})
}

func (r *registry) addExtension(f *file, scope string, decl []byte) error {
	if _, err := r.add(f, scope, name(decl), false); err != nil {
		return err
	}
	var ext extension
	err := eachField(decl, func(num protowire.Number, v []byte, n uint64) error {
		switch num {
		case fieldExtendee:
			ext.extendee = strings.TrimPrefix(string(v), ".")
		case fieldNumber:
			ext.number = int32(n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.extensions[ext] = f
	r.extensionNumbers[ext.extendee] = append(r.extensionNumbers[ext.extendee], ext.number)
	return nil
}
