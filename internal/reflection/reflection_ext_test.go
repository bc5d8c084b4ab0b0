package reflection_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
)

// stream is a grpc-go reflection stream, v1 or v1alpha (the same messages
// under two names: v1alpha's are converted through their encoding).
type stream struct {
	t    *testing.T
	send func(*reflectionv1.ServerReflectionRequest) error
	recv func() (*reflectionv1.ServerReflectionResponse, error)
}

func (s stream) ask(req *reflectionv1.ServerReflectionRequest) *reflectionv1.ServerReflectionResponse {
	s.t.Helper()
	if err := s.send(req); err != nil {
		s.t.Fatal(err)
	}
	res, err := s.recv()
	if err != nil {
		s.t.Fatal(err)
	}
	if !proto.Equal(res.GetOriginalRequest(), req) {
		s.t.Errorf("original_request %v, want %v", res.GetOriginalRequest(), req)
	}
	if res.GetValidHost() != req.GetHost() {
		s.t.Errorf("valid_host %q, want %q", res.GetValidHost(), req.GetHost())
	}
	return res
}

func convert[T proto.Message](t *testing.T, from proto.Message, to T) T {
	t.Helper()
	b, err := proto.Marshal(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(b, to); err != nil {
		t.Fatal(err)
	}
	return to
}

// streams opens one stream of each version on a served Switchyard.
func streams(t *testing.T) map[string]stream {
	srv := testserver.Start(t, server.Config{})
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	v1, err := reflectionv1.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v1alpha, err := reflectionv1alpha.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// End both streams cleanly before the server stops (cleanups run last
	// registered first), so the server's call log is written within the
	// test and each stream is seen to end with the client's.
	t.Cleanup(func() {
		for name, s := range map[string]grpc.ClientStream{"v1": v1, "v1alpha": v1alpha} {
			if err := s.CloseSend(); err != nil {
				t.Errorf("%s: CloseSend: %v", name, err)
			}
			if err := s.RecvMsg(&reflectionv1.ServerReflectionResponse{}); err != io.EOF {
				t.Errorf("%s: after CloseSend the stream ended with %v, want io.EOF", name, err)
			}
		}
	})
	return map[string]stream{
		"v1": {t, v1.Send, v1.Recv},
		"v1alpha": {t,
			func(r *reflectionv1.ServerReflectionRequest) error {
				return v1alpha.Send(convert(t, r, &reflectionv1alpha.ServerReflectionRequest{}))
			},
			func() (*reflectionv1.ServerReflectionResponse, error) {
				res, err := v1alpha.Recv()
				if err != nil {
					return nil, err
				}
				return convert(t, res, &reflectionv1.ServerReflectionResponse{}), nil
			}},
	}
}

// files decodes a FileDescriptorResponse into a registry, so that what
// reflection sent must resolve by itself, as a client's would.
func files(t *testing.T, res *reflectionv1.ServerReflectionResponse) (*protoregistry.Files, []string) {
	t.Helper()
	if e := res.GetErrorResponse(); e != nil {
		t.Fatalf("error response %d: %s", e.GetErrorCode(), e.GetErrorMessage())
	}
	var set descriptorpb.FileDescriptorSet
	var names []string
	for _, b := range res.GetFileDescriptorResponse().GetFileDescriptorProto() {
		fd := &descriptorpb.FileDescriptorProto{}
		if err := proto.Unmarshal(b, fd); err != nil {
			t.Fatalf("a file descriptor does not decode: %v", err)
		}
		set.File = append(set.File, fd)
		names = append(names, fd.GetName())
	}
	reg, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatalf("the files sent do not resolve: %v", err)
	}
	return reg, names
}

// Every listed service is described, both versions: its file, with its
// methods, whose message types resolve in turn, and with its comments.
func TestDescribesEveryListedService(t *testing.T) {
	t.Parallel()
	for version, s := range streams(t) {
		t.Run(version, func(t *testing.T) {
			s.t = t
			res := s.ask(&reflectionv1.ServerReflectionRequest{Host: "localhost", MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{}})
			var listed []string
			for _, svc := range res.GetListServicesResponse().GetService() {
				listed = append(listed, svc.GetName())
			}
			for _, want := range []string{"teams.v1.TeamsService", "Teams", "routeguide.RouteGuide", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} {
				if !slices.Contains(listed, want) {
					t.Errorf("list_services %q: %s missing", listed, want)
				}
			}
			for _, name := range listed {
				res := s.ask(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: name}})
				reg, _ := files(t, res)
				d, err := reg.FindDescriptorByName(protoreflect.FullName(name))
				if err != nil {
					t.Errorf("%s: not in the file sent for it: %v", name, err)
					continue
				}
				sd := d.(protoreflect.ServiceDescriptor)
				if sd.Methods().Len() == 0 {
					t.Errorf("%s: no methods", name)
				}
				if loc := sd.ParentFile().SourceLocations().ByDescriptor(sd); strings.TrimSpace(loc.LeadingComments) == "" {
					t.Errorf("%s: no comment (the descriptors should keep their source info)", name)
				}
				for i := range sd.Methods().Len() {
					m := sd.Methods().Get(i)
					for _, typ := range []protoreflect.FullName{m.Input().FullName(), m.Output().FullName()} {
						res := s.ask(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: string(typ)}})
						if reg, _ := files(t, res); reg == nil {
							t.Errorf("%s: message %s not described", m.FullName(), typ)
						}
					}
				}
			}
		})
	}
}

// Every kind of symbol is found, the way grpcurl asks for them.
func TestFileContainingSymbol(t *testing.T) {
	t.Parallel()
	s := streams(t)["v1"]
	for symbol, file := range map[string]string{
		"teams.v1.TeamsService":                                      "teams/v1/teams.proto",
		"teams.v1.TeamsService.GetTeam":                              "teams/v1/teams.proto",
		"teams.v1.GetTeamRequest":                                    "teams/v1/teams.proto",
		"teams.v1.GetTeamRequest.city":                               "teams/v1/teams.proto",
		"KeywordService.GetKeywords":                                 "keywords/nltk_service.proto",
		"grpc.health.v1.HealthCheckResponse.ServingStatus":           "grpc/health/v1/health.proto",
		"grpc.health.v1.HealthCheckResponse.SERVING":                 "grpc/health/v1/health.proto", // an enum value: beside its enum
		"grpc.reflection.v1.ServerReflectionRequest.message_request": "grpc/reflection/v1/reflection.proto",
		"grpc.reflection.v1alpha.ServerReflection":                   "grpc/reflection/v1alpha/reflection.proto",
	} {
		res := s.ask(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol}})
		if _, names := files(t, res); len(names) == 0 || names[0] != file {
			t.Errorf("file_containing_symbol %s = %q, want %s first", symbol, names, file)
		}
	}
	res := s.ask(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_FileByFilename{FileByFilename: "routeguide/v1/routeguide.proto"}})
	if reg, names := files(t, res); len(names) != 1 || reg.NumFiles() != 1 {
		t.Errorf("file_by_filename routeguide/v1/routeguide.proto = %q", names)
	}
}

// Requests that cannot be answered get an ErrorResponse with the code and a
// message that says what to ask instead; the stream goes on.
func TestErrorResponses(t *testing.T) {
	t.Parallel()
	s := streams(t)["v1"]
	for _, c := range []struct {
		req      *reflectionv1.ServerReflectionRequest
		code     codes.Code
		contains string
	}{
		{&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_FileByFilename{FileByFilename: "no/such.proto"}}, codes.NotFound, `no file "no/such.proto"`},
		{&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: ".teams.v1.TeamsService"}}, codes.NotFound, "without a leading dot"},
		{&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_FileContainingExtension{FileContainingExtension: &reflectionv1.ExtensionRequest{ContainingType: "teams.v1.GetTeamRequest", ExtensionNumber: 100}}}, codes.NotFound, `no extension 100 of "teams.v1.GetTeamRequest"`},
		{&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_AllExtensionNumbersOfType{AllExtensionNumbersOfType: "teams.v1.TeamsService"}}, codes.NotFound, `no message "teams.v1.TeamsService"`},
		{&reflectionv1.ServerReflectionRequest{Host: "h"}, codes.InvalidArgument, "asks for nothing"},
	} {
		res := s.ask(c.req)
		e := res.GetErrorResponse()
		if codes.Code(e.GetErrorCode()) != c.code || !strings.Contains(e.GetErrorMessage(), c.contains) {
			t.Errorf("%v: error %d %q, want %v containing %q", c.req, e.GetErrorCode(), e.GetErrorMessage(), c.code, c.contains)
		}
	}
	// A message without extensions has an empty list.
	res := s.ask(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_AllExtensionNumbersOfType{AllExtensionNumbersOfType: "teams.v1.GetTeamRequest"}})
	if n := res.GetAllExtensionNumbersResponse(); n.GetBaseTypeName() != "teams.v1.GetTeamRequest" || len(n.GetExtensionNumber()) != 0 {
		t.Errorf("all_extension_numbers_of_type teams.v1.GetTeamRequest = %v", res)
	}
}

// The image describes what the binary serves: every API and tutorial file
// is the generated code's, except for comments and for the file options
// buf's managed mode adds when it generates (go_package and the like: the
// image keeps the files as written), and gRPC's own protos carry the
// messages of grpc-go's copies.
func TestImageMatchesServedCode(t *testing.T) {
	t.Parallel()
	s := streams(t)["v1"]
	seen := 0
	for _, path := range []string{
		"teams/v1/teams.proto", "greeter/v1/greeter.proto", "routeguide/v1/routeguide.proto", "keywords/v1/keywords.proto", "summator/v1/summator.proto",
		"teams/teams.proto", "helloworld/helloworld.proto", "routeguide/route_guide.proto", "keywords/nltk_service.proto", "summator/summator.proto",
	} {
		res := s.ask(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_FileByFilename{FileByFilename: path}})
		reg, _ := files(t, res)
		got, err := reg.FindFileByPath(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		gen, err := protoregistry.GlobalFiles.FindFileByPath(path)
		if err != nil {
			t.Errorf("%s is not linked into the server: %v", path, err)
			continue
		}
		a, b := protodesc.ToFileDescriptorProto(got), protodesc.ToFileDescriptorProto(gen)
		a.SourceCodeInfo, a.Options, b.Options = nil, nil, nil
		if !proto.Equal(a, b) {
			t.Errorf("%s: reflection's descriptor differs from the generated code's (run make generate)", path)
		}
		seen++
	}
	for path, theirs := range map[string]protoreflect.FileDescriptor{
		"grpc/health/v1/health.proto":              healthpb.File_grpc_health_v1_health_proto,
		"grpc/reflection/v1/reflection.proto":      reflectionv1.File_grpc_reflection_v1_reflection_proto,
		"grpc/reflection/v1alpha/reflection.proto": reflectionv1alpha.File_grpc_reflection_v1alpha_reflection_proto,
	} {
		res := s.ask(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_FileByFilename{FileByFilename: path}})
		reg, _ := files(t, res)
		ours, err := reg.FindFileByPath(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if ours.Package() != theirs.Package() {
			t.Errorf("%s: package %s, grpc-go's %s", path, ours.Package(), theirs.Package())
		}
		for i := range ours.Messages().Len() {
			m := ours.Messages().Get(i)
			tm := theirs.Messages().ByName(m.Name())
			if tm == nil {
				t.Errorf("%s: message %s is not grpc-go's", path, m.Name())
				continue
			}
			a, b := protodesc.ToDescriptorProto(m), protodesc.ToDescriptorProto(tm)
			if !proto.Equal(a, b) {
				t.Errorf("%s: message %s differs from grpc-go's:\n%v\n%v", path, m.Name(), a, b)
			}
		}
		if ours.Messages().Len() == 0 || ours.Services().Len() != 1 {
			t.Errorf("%s: %d messages, %d services", path, ours.Messages().Len(), ours.Services().Len())
		}
		seen++
	}
	if seen != 13 {
		t.Errorf("compared %d files, want 13", seen)
	}
}

// Connect clients that ask for JSON are told to use protobuf.
func TestConnectJSONIsRefused(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t, server.Config{})
	msg := []byte(`{"listServices":""}`)
	body := append([]byte{0, 0, 0, 0, 0}, msg...)
	binary.BigEndian.PutUint32(body[1:5], uint32(len(msg)))
	req, err := http.NewRequest("POST", srv.URL+"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/connect+json")
	res, err := testserver.NewH2CClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("protobuf only")) || !bytes.Contains(out, []byte(`"code":"invalid_argument"`)) {
		t.Errorf("connect+json reflection answered %d %q, want invalid_argument about protobuf", res.StatusCode, out)
	}
}
