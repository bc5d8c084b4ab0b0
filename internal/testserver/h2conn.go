package testserver

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// H2Conn is a raw client connection for HTTP/2 protocol tests: it writes
// frames with golang.org/x/net/http2's Framer — illegal ones too, which
// is the point — and reads the server's, header blocks decoded.
type H2Conn struct {
	T        testing.TB
	Conn     net.Conn
	Fr       *http2.Framer
	Settings map[http2.SettingID]uint32 // the server's first SETTINGS
	hbuf     bytes.Buffer
	enc      *hpack.Encoder
}

// DialH2 opens a prior-knowledge h2c connection to addr, sends the preface
// and settings, and returns once the server's SETTINGS have arrived (and
// been acknowledged). The connection is closed when the test ends.
func DialH2(t testing.TB, addr string, settings ...http2.Setting) *H2Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return StartH2(t, conn, settings...)
}

// DialH2TLS is DialH2 over TLS, trusting roots and negotiating "h2" by ALPN.
func DialH2TLS(t testing.TB, addr string, roots *x509.CertPool, settings ...http2.Setting) *H2Conn {
	t.Helper()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(dialer, "tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		conn.Close()
		t.Fatalf("ALPN negotiated %q, want h2", p)
	}
	return StartH2(t, conn, settings...)
}

// StartH2 is DialH2 on a connection the test made itself (a socket option
// of its own, a reader that lags): it sends the client preface and
// settings on conn and reads the server's SETTINGS.
func StartH2(t testing.TB, conn net.Conn, settings ...http2.Setting) *H2Conn {
	t.Helper()
	t.Cleanup(func() { conn.Close() })
	c := &H2Conn{T: t, Conn: conn, Fr: http2.NewFramer(conn, conn), Settings: map[http2.SettingID]uint32{}}
	c.enc = hpack.NewEncoder(&c.hbuf)
	c.Fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.Fr.AllowIllegalWrites = true
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.Fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	f, err := c.ReadFrame(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		t.Fatalf("first server frame %v, want SETTINGS", f)
	}
	_ = sf.ForeachSetting(func(s http2.Setting) error { c.Settings[s.ID] = s.Val; return nil })
	if err := c.Fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	return c
}

// ReadFrame returns the next frame, waiting at most timeout.
func (c *H2Conn) ReadFrame(timeout time.Duration) (http2.Frame, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	return c.Fr.ReadFrame()
}

// HeaderBlock HPACK-encodes name, value pairs.
func (c *H2Conn) HeaderBlock(kv ...string) []byte {
	c.hbuf.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		_ = c.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return bytes.Clone(c.hbuf.Bytes())
}

// WriteHeaders sends one HEADERS frame (END_HEADERS) of name, value pairs.
func (c *H2Conn) WriteHeaders(id uint32, endStream bool, kv ...string) {
	c.T.Helper()
	if err := c.Fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.HeaderBlock(kv...), EndHeaders: true, EndStream: endStream}); err != nil {
		c.T.Fatal(err)
	}
}

// Closed reports whether the server closed the connection within timeout,
// discarding what it sends meanwhile.
func (c *H2Conn) Closed(timeout time.Duration) bool {
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 64<<10)
	for {
		_, err := c.Conn.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}
