// Package hostutil answers, once for the whole module, the two questions
// about "loopback" hosts that the middleware and the engine ask. They are
// different questions with different answers, so each has its own
// function:
//
//   - BrowserSecureContext: will a browser treat http://host as a secure
//     context, so that a Secure cookie set over plain http comes back?
//     (The middleware's check of a plain-http redirect URL.)
//   - PlainHTTPStaysLocal: does a plain-http connection to host stay on
//     this machine whatever DNS says? (The engine's check before it sends
//     client credentials over plain http to an OP.) LoopbackOnly answers
//     the same question for the address a dialer actually connects to.
//
// Both take a host as url.URL.Hostname returns it: no port; brackets
// around an IPv6 literal are tolerated. Anything else (a port, a zone, a
// trailing dot, an empty string) answers false: both are guards, and a
// false answer only asks for https or an explicit Insecure switch.
package hostutil

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// ErrNotLoopback is returned by LoopbackOnly.
var ErrNotLoopback = errors.New("hostutil: connection to a non-loopback address refused")

// BrowserSecureContext reports whether a browser treats an http origin on
// host as potentially trustworthy (W3C Secure Contexts §3.2): the name
// localhost or a name under .localhost (any letter case), an IPv4 literal
// in 127.0.0.0/8 in dotted-decimal form, or the IPv6 literal ::1.
//
// It does not say where the name resolves: it is about the browser's
// treatment of the origin, not about the network. Short or hexadecimal
// IPv4 forms (127.1, 0x7f.0.0.1), which some URL parsers rewrite and
// others send to DNS, IPv4-mapped IPv6 (::ffff:127.0.0.1), which is not
// in the specification's list, and 0.0.0.0 are refused.
func BrowserSecureContext(host string) bool {
	host = unbracket(host)
	if ip, ok := literal(host); ok {
		return (ip.Is4() || (ip.Is6() && !ip.Is4In6())) && ip.IsLoopback()
	}
	h := strings.ToLower(host)
	if h == "localhost" {
		return true
	}
	sub, ok := strings.CutSuffix(h, ".localhost")
	return ok && IsDNSName(sub)
}

// PlainHTTPStaysLocal reports whether a plain-http connection to host
// stays on this machine without asking DNS: host is an IP literal in a
// loopback range (127.0.0.0/8, ::1, or 127.0.0.0/8 mapped into IPv6),
// or exactly the name localhost (any letter case), which resolvers
// answer from the hosts file and RFC 6761 reserves for loopback.
//
// A name under .localhost is refused: nothing but the resolver's good
// will keeps evil.localhost from resolving elsewhere. So are forms the
// dialer would hand to the resolver rather than parse (127.1,
// 0x7f.0.0.1, a trailing dot), zones, and 0.0.0.0 / :: (which reach
// this machine on some systems but are not loopback).
func PlainHTTPStaysLocal(host string) bool {
	host = unbracket(host)
	if ip, ok := literal(host); ok {
		return ip.Unmap().IsLoopback()
	}
	return strings.EqualFold(host, "localhost")
}

// LoopbackOnly is a net.Dialer Control function that refuses, before it
// connects, every address that is not a loopback IP (after the resolver
// ran: it checks the address actually dialed, so a name that resolves
// elsewhere is caught too). The error wraps ErrNotLoopback.
func LoopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return errors.Join(ErrNotLoopback, err)
	}
	if ip, ok := literal(host); ok && ip.Unmap().IsLoopback() {
		return nil
	}
	return ErrNotLoopback
}

// literal parses host as an IP literal in the forms Go's dialer parses
// itself (dotted decimal without leading zeros, RFC 4291 IPv6), without
// a zone. ok is false for anything else, including a zone.
func literal(host string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip, true
}

// unbracket removes one pair of brackets around an IPv6 literal.
func unbracket(host string) string {
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' && strings.Contains(host, ":") {
		return host[1 : len(host)-1]
	}
	return host
}

// IsDNSName reports whether s is a host name: one or more dot-separated
// labels of ASCII letters, digits, '-' and '_', none empty and none over
// 63 bytes, at most 253 bytes in all, without a trailing dot.
func IsDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
