package server_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"connectrpc.com/connect"

	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/gen/routeguide/v1/routeguidev1connect"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/internal/testserver"
	"github.com/switchyard/switchyard/services/routeguide"
)

// A server stream that outlives a shutdown's grace over HTTP/1.1, which
// net/http's server carries, is ended with an answer, UNAVAILABLE, in
// every protocol (EndCalls), not cut off by the close that follows. The
// client reads one message, the server ends the calls, then the client
// reads on: the stream is 10 MiB, more than the socket buffers between
// them hold, so its handler is still sending when the calls are ended.
func TestEndCallsAnswersServerStreamsOverHTTP1(t *testing.T) {
	t.Parallel()
	const features = 10000
	var b strings.Builder
	b.WriteString("[")
	name := strings.Repeat("n", 1024)
	for i := range features {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"location":{"latitude":%d,"longitude":1},"name":%q}`, i, name)
	}
	b.WriteString("]")
	db, err := routeguide.ParseDB([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	all := &routeguidev1.ListFeaturesRequest{Lo: &routeguidev1.Point{Latitude: 0, Longitude: 0}, Hi: &routeguidev1.Point{Latitude: features, Longitude: 1}}
	for _, p := range testserver.Protocols() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			// Ending the calls is for good: a server each.
			srv := testserver.Start(t, server.Config{RouteDB: db})
			// A small receive buffer, fixed: the kernel's autotuning could
			// otherwise take in most of the stream.
			dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
				var err error
				if cerr := c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<10) }); cerr != nil {
					return cerr
				}
				return err
			}}
			tr := &http.Transport{DialContext: dialer.DialContext} // HTTP/1.1
			defer tr.CloseIdleConnections()
			client := routeguidev1connect.NewRouteGuideServiceClient(&http.Client{Transport: tr}, srv.URL, p.Opts...)
			stream, err := client.ListFeatures(testserver.CallContext(t), connect.NewRequest(all))
			if err != nil {
				t.Fatal(err)
			}
			defer stream.Close()
			if !stream.Receive() {
				t.Fatalf("no first feature: %v", stream.Err())
			}
			if stream.ResponseHeader() == nil {
				t.Fatal("no response header")
			}
			srv.EndCalls()
			n := 1
			for stream.Receive() {
				n++
			}
			err = stream.Err()
			if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "the server ended the call") || n == features {
				t.Errorf("ListFeatures over HTTP/1.1, ended by the server after its first message: %v after %d of %d features, want unavailable saying the server ended it, before the last", err, n, features)
			}
		})
	}
}
