// Package truncate bounds text that is not the project's own (an OP's
// error description, a command name a client sent, a value from a
// challenge) before it goes into an error, a log line or a page.
package truncate

import "unicode/utf8"

// Ellipsis marks a cut.
const Ellipsis = "…"

// String returns s when it has at most n bytes; else its first n bytes or
// fewer, cut on a UTF-8 character boundary, followed by Ellipsis: at most
// n+len(Ellipsis) bytes. A cut in invalid UTF-8 (no character start
// within the last utf8.UTFMax bytes) is made at n.
func String(s string, n int) string {
	n = max(n, 0)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && n-cut < utf8.UTFMax-1 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if !utf8.RuneStart(s[cut]) {
		cut = n
	}
	return s[:cut] + Ellipsis
}
