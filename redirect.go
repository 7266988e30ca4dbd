package oxd

import (
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxReturnToLen bounds a return-to value; longer values fall back to the
// default.
const maxReturnToLen = 2048

// safeReturnTo reports whether raw is a same-origin path that a browser will
// resolve against this application and nothing else, and returns it
// unchanged when it is.
//
// Accepted: a path that starts with exactly one "/", optionally followed by a
// query, made of printable ASCII only. Rejected, among others: any scheme
// ("https://…", "javascript:…"), protocol-relative "//host" and "/\host",
// backslashes anywhere, control characters (CR, LF, TAB, NUL, DEL) raw or
// percent-encoded, encoded slashes or backslashes that decode to "//" or
// "\" at the start, "@" userinfo tricks, non-ASCII (IDN, fullwidth
// solidus), fragments and anything longer than 2048 bytes.
//
// Browsers strip TAB/CR/LF anywhere in a URL and treat "\" as "/", which is
// why those are refused outright rather than interpreted.
func safeReturnTo(raw string) (string, bool) {
	if raw == "" || len(raw) > maxReturnToLen {
		return "", false
	}
	if !cleanPathChars(raw) {
		return "", false
	}
	if !singleLeadingSlash(raw) {
		return "", false
	}
	// Look through percent-encoding (several layers: the value may be
	// decoded again by a proxy or by the application). A decoded layer may
	// hold spaces, "#", "?" or UTF-8 (legitimate in a path), but never
	// control characters, backslashes or a leading "//".
	dec := raw
	for layer := 0; ; layer++ {
		next, err := url.PathUnescape(dec)
		if err != nil {
			return "", false
		}
		if next == dec {
			break
		}
		if layer == 3 {
			return "", false // still encoded after three layers: refuse rather than guess
		}
		if !decodedPathOK(next) {
			return "", false
		}
		dec = next
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || u.Fragment != "" {
		return "", false
	}
	if !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "", false
	}
	return raw, true
}

// decodedPathOK checks one percent-decoded layer of a return-to value.
func decodedPathOK(s string) bool {
	if !singleLeadingSlash(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// singleLeadingSlash reports whether s starts with exactly one "/" (not
// "//" nor "/\\") and its path part (up to "?") has no "." or ".." segment
// anywhere, so that no later dot-segment resolution (e.g. "/a/..//evil")
// can turn it into a protocol-relative "//host".
func singleLeadingSlash(s string) bool {
	if !strings.HasPrefix(s, "/") {
		return false
	}
	p, _, _ := strings.Cut(s, "?")
	if strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return false
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// cleanPathChars reports whether s is printable ASCII without backslash,
// "#" and without the characters browsers silently remove or reinterpret.
func cleanPathChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '\\' || c == '#' {
			return false
		}
	}
	return true
}

// IsAPIRequest is the default decision between an API-style request, which
// gets 401 and never a redirect, and a browser navigation, which is sent to
// the OP to log in. A request is an API request when any of these holds:
//
//   - its method is neither GET nor HEAD;
//   - its Accept header lists application/json or a "+json" media type;
//   - it carries X-Requested-With: XMLHttpRequest;
//   - it carries Sec-Fetch-Mode with a value other than "navigate" (fetch,
//     XHR, cors, no-cors, websocket, …).
//
// Use [Config.APIRequest] to decide differently; a custom decision may call
// IsAPIRequest for the default part.
func IsAPIRequest(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return true
	}
	if strings.EqualFold(r.Header.Get("X-Requested-With"), "XMLHttpRequest") {
		return true
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" && !strings.EqualFold(m, "navigate") {
		return true
	}
	for _, accept := range r.Header.Values("Accept") {
		if acceptsJSON(accept) {
			return true
		}
	}
	return false
}

func acceptsJSON(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		mt, _, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		if mt == "application/json" || strings.HasSuffix(mt, "+json") {
			return true
		}
	}
	return false
}
