package server

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/switchyard/switchyard/internal/outcome"
)

// withClientAddr sets each request's RemoteAddr to the client's address as
// forwarded by a trusted proxy, so that the per-call log line (and anything
// else that reads the peer from the request) names the client rather than
// the proxy. Only a connection from an address within trusted may say who
// the client is; from anywhere else the headers are ignored, since any
// client can send them. Without trusted proxies the handler is h itself.
//
// X-Forwarded-For is read from the right: each proxy appends the address
// it received the request from, so the rightmost address that is not a
// trusted proxy is the client, and whatever a client wrote further left is
// not believed. X-Real-IP (one address, set by the proxy) is used when
// there is no X-Forwarded-For. RemoteAddr becomes the bare IP: a proxy
// does not forward the client's port.
func withClientAddr(h http.Handler, trusted []netip.Prefix) http.Handler {
	if len(trusted) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if addr, ok := forwardedClient(r, trusted); ok {
			r.RemoteAddr = addr.String()
			// The call's record too: a call rejected before a handler
			// sees it (a bad body, an unknown procedure, a wrong content
			// type) is logged with this client, not the proxy.
			if rec := outcome.FromContext(r.Context()); rec != nil {
				rec.Peer = r.RemoteAddr
			}
		}
		h.ServeHTTP(w, r)
	})
}

func forwardedClient(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	peer, ok := parseAddr(r.RemoteAddr)
	if !ok || !isTrusted(peer, trusted) {
		return netip.Addr{}, false
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		client, found := peer, false
		for i := len(hops) - 1; i >= 0; i-- {
			a, ok := parseAddr(strings.TrimSpace(hops[i]))
			if !ok {
				break // a malformed hop: trust nothing further left
			}
			client, found = a, true
			if !isTrusted(a, trusted) {
				break
			}
		}
		return client, found
	}
	if a, ok := parseAddr(strings.TrimSpace(r.Header.Get("X-Real-IP"))); ok {
		return a, true
	}
	return netip.Addr{}, false
}

// parseAddr reads "ip", "ip:port" or "[ipv6]:port". An IPv6 zone is
// dropped: it names an interface of the host that wrote it, and it is
// free text, which would go into every log line.
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		host, _, err := net.SplitHostPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		if a, err = netip.ParseAddr(host); err != nil {
			return netip.Addr{}, false
		}
	}
	return a.Unmap().WithZone(""), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseTrustedProxies reads a comma-separated list of CIDR prefixes or
// single addresses (the -trusted-proxies flag); empty means none.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR prefix (such as 10.0.0.0/8 or 127.0.0.1)", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
