package testserver

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
)

// Answer is what an HTTP client sees of one response: status, headers
// (Date left out: it is the clock's), the whole body and the trailers, or
// the error that ended the call (Err).
type Answer struct {
	Status  int
	Header  http.Header
	Body    []byte
	Trailer http.Header
	Err     string
}

// Ask sends one request through c and reads its whole answer. A "Host"
// entry of header is the request's Host.
func Ask(c *http.Client, method, url string, header http.Header, body []byte) Answer {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return Answer{Err: err.Error()}
	}
	req.Header = header.Clone()
	if host := req.Header.Get("Host"); host != "" {
		req.Host = host
		req.Header.Del("Host")
	}
	res, err := c.Do(req)
	if err != nil {
		return Answer{Err: err.Error()}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	a := Answer{Status: res.StatusCode, Header: res.Header, Body: b, Trailer: res.Trailer}
	if err != nil {
		a.Err = err.Error()
	}
	delete(a.Header, "Date")
	return a
}

// Equal reports whether a and b are the same answer, field by field.
func (a Answer) Equal(b Answer) bool {
	return a.Err == b.Err && a.Status == b.Status && bytes.Equal(a.Body, b.Body) &&
		maps.EqualFunc(a.Header, b.Header, slices.Equal) && maps.EqualFunc(a.Trailer, b.Trailer, slices.Equal)
}

func (a Answer) String() string {
	return fmt.Sprintf("%d %v body %q trailers %v %s", a.Status, a.Header, a.Body, a.Trailer, a.Err)
}
