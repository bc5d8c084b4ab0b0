package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	routeguidev1 "github.com/switchyard/switchyard/gen/routeguide/v1"
	"github.com/switchyard/switchyard/internal/server"
	"github.com/switchyard/switchyard/services/routeguide"
)

// A stream the server refuses (RST_STREAM REFUSED_STREAM, RFC 9113 §8.7)
// is made again on a new stream, and counted, not failed; the
// STREAM_CLOSED a server sends for the refused stream's DATA ends nothing.
func TestRefusedStreamsAreMadeAgain(t *testing.T) {
	addr, refused := refusingServer(t)
	o := short(addr, "getfeature")
	res, err := runOnce(t, o, dialer{addr: addr})
	if err != nil || res.Errors > 0 {
		t.Fatalf("run: %v; %d errors, first: %s", err, res.Errors, res.FirstErr)
	}
	if res.Refused == 0 || int64(res.Refused) != refused.Load() || res.Calls == 0 {
		t.Errorf("%d calls, %d refused streams counted, the server refused %d", res.Calls, res.Refused, refused.Load())
	}
}

// refusingServer serves GetFeature over h2c, answering each point with
// the route guide's feature there, and refuses every third stream once
// its HEADERS are read, as a server at its stream limit does.
func refusingServer(t *testing.T) (string, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	refused := new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveRefusing(c, refused)
		}
	}()
	return ln.Addr().String(), refused
}

func serveRefusing(c net.Conn, refused *atomic.Int64) {
	defer func() { _ = c.Close() }()
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	if _, err := io.ReadFull(br, make([]byte, len(http2.ClientPreface))); err != nil {
		return
	}
	fr := http2.NewFramer(bw, br)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	_ = fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	block := func(fields ...string) []byte {
		hb.Reset()
		for i := 0; i+1 < len(fields); i += 2 {
			_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return bytes.Clone(hb.Bytes())
	}
	db := routeguide.DefaultDB()
	bodies, gone := map[uint32][]byte{}, map[uint32]bool{}
	n := 0
	for {
		if err := bw.Flush(); err != nil {
			return
		}
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = fr.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			if n++; n%3 == 0 {
				refused.Add(1)
				gone[f.StreamID] = true
				_ = fr.WriteRSTStream(f.StreamID, http2.ErrCodeRefusedStream)
				continue
			}
			bodies[f.StreamID] = nil
		case *http2.DataFrame:
			if l := f.Length; l > 0 {
				_ = fr.WriteWindowUpdate(0, l)
			}
			if gone[f.StreamID] {
				delete(gone, f.StreamID)
				_ = fr.WriteRSTStream(f.StreamID, http2.ErrCodeStreamClosed)
				continue
			}
			body := append(bodies[f.StreamID], f.Data()...)
			bodies[f.StreamID] = body
			if !f.StreamEnded() {
				continue
			}
			delete(bodies, f.StreamID)
			var req routeguidev1.GetFeatureRequest
			if len(body) < 5 || proto.Unmarshal(body[5:], &req) != nil {
				return
			}
			at := db.FeatureAt(routeguide.Point{Latitude: req.GetLatitude(), Longitude: req.GetLongitude()})
			msg, _ := proto.Marshal(&routeguidev1.GetFeatureResponse{Name: at.Name,
				Location: &routeguidev1.Point{Latitude: at.Location.Latitude, Longitude: at.Location.Longitude}})
			framed := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, EndHeaders: true,
				BlockFragment: block(":status", "200", "content-type", "application/grpc")})
			_ = fr.WriteData(f.StreamID, false, append(framed, msg...))
			_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, EndHeaders: true, EndStream: true,
				BlockFragment: block("grpc-status", "0")})
		case *http2.GoAwayFrame:
			return
		}
	}
}

// The writer's first write is acknowledged before the reads begin, so a
// run's reads see a write however few calls the machine lets it make:
// here the share asks for no write at all over the run's reads.
func TestFirstWriteBeforeReads(t *testing.T) {
	t.Setenv(childEnv, "1")
	srv := startSwitchyard(t, false, server.Config{})
	o := short(srv.Addr, "getteam")
	o.writeShare, o.tokenFile = 1e-9, tokenFile(t, adminToken)
	res, err := runOnce(t, o, dialer{addr: srv.Addr})
	if err != nil || res.Errors > 0 {
		t.Fatalf("run: %v; %d errors, first: %s", err, res.Errors, res.FirstErr)
	}
	// The one write renamed Chicago, read every tenth call of each
	// connection: every one of those reads came after it.
	if res.Writer == nil || res.Writer.WritesAll != 1 || res.WritesSeen < res.CallsAll/10-o.conns {
		t.Errorf("writer %+v; %d of %d reads saw the write, want every read of Chicago (%d or more)", res.Writer, res.WritesSeen, res.CallsAll, res.CallsAll/10-o.conns)
	}
}
