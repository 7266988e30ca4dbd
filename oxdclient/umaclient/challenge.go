// Package umaclient is the client side of a UMA 2.0 protected API: it
// parses the resource server's 401 challenge
// (WWW-Authenticate: UMA realm="…", as_uri="…", ticket="…", UMA 2.0 Grant
// §3.2) and redeems its permission ticket for an RPT (Grant §3.3), either
// through oxd (uma_rp_get_rpt) or, for a client without oxd, directly at
// the authorization server's token endpoint.
//
//	res, _ := http.DefaultClient.Do(req)
//	if res.StatusCode == http.StatusUnauthorized {
//		ch, err := umaclient.ParseChallenge(res.Header)
//		if err != nil { … }
//		rpt, err := uc.RPT(ctx, ch, umaclient.Options{})
//		if err != nil { … }
//		req.Header.Set("Authorization", "Bearer "+rpt.AccessToken.Reveal())
//		// send req again
//	}
//
// The authorization servers a [Client] may contact are listed in
// [Config.Issuers]: the as_uri of a challenge comes from the resource
// server, and a client must not send its credentials (or its tickets and
// claims) to whatever server a response names.
package umaclient

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/oxdgo/oxd/internal/hostutil"
	"github.com/oxdgo/oxd/internal/truncate"
)

// Bounds applied by [ParseChallenge].
const (
	// MaxChallengeHeaderLen bounds the summed length of all
	// WWW-Authenticate values of one response.
	MaxChallengeHeaderLen = 8 << 10
	// MaxChallengeParamLen bounds one parameter value (as_uri, ticket,
	// realm, or an unknown parameter) after unquoting.
	MaxChallengeParamLen = 2048
	// maxParams bounds the parameters of one challenge.
	maxParams = 16
)

// Challenge is a parsed UMA challenge (UMA 2.0 Grant §3.2.1).
type Challenge struct {
	// Realm is the realm parameter; it may be empty.
	Realm string
	// ASURI is the authorization server's issuer URI (as_uri): an
	// absolute https URL, or http on a loopback host.
	ASURI string
	// Ticket is the permission ticket. It is single-use.
	Ticket string
}

// Errors of [ParseChallenge], for errors.Is. Every error it returns is a
// [*ChallengeError] that wraps one of them.
var (
	// ErrNoChallenge: the response carries no UMA challenge (no
	// WWW-Authenticate header, or only other schemes such as Bearer).
	ErrNoChallenge = errors.New("umaclient: no UMA challenge")
	// ErrMalformedChallenge: a WWW-Authenticate value does not follow the
	// HTTP grammar, or the UMA challenge breaks one of the rules of
	// ParseChallenge.
	ErrMalformedChallenge = errors.New("umaclient: malformed UMA challenge")
)

// ChallengeError explains why a challenge was refused. Its message names
// the rule that was broken, never a parameter value.
type ChallengeError struct {
	Kind   error  // ErrNoChallenge or ErrMalformedChallenge
	Reason string // e.g. `duplicate parameter "ticket"`
}

func (e *ChallengeError) Error() string {
	if e.Reason == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Reason
}

// Unwrap returns Kind.
func (e *ChallengeError) Unwrap() error { return e.Kind }

func malformed(format string, args ...any) error {
	return &ChallengeError{Kind: ErrMalformedChallenge, Reason: fmt.Sprintf(format, args...)}
}

// ParseChallenge finds the UMA challenge among the WWW-Authenticate values
// of h and checks it strictly. The rules:
//
//   - Every WWW-Authenticate value (there may be several headers, and
//     several challenges in one value) must follow the grammar of RFC 9110
//     §11.6.1; a header that cannot be parsed is refused as a whole, since
//     the UMA challenge could not be located in it with certainty.
//   - The scheme is matched case-insensitively ("UMA", "uma"); challenges
//     of other schemes are skipped. Exactly one UMA challenge must be
//     present: none gives [ErrNoChallenge], two or more are refused.
//   - Parameter names are case-insensitive; a parameter given twice is
//     refused. Values are tokens or quoted strings (quoted-pair escapes
//     are undone); control characters and non-ASCII bytes are refused.
//   - as_uri and ticket are required, realm is optional. Unknown
//     parameters (oxd adds error="insufficient_scope") are checked for
//     syntax and otherwise ignored; at most 16 parameters.
//   - as_uri must be an absolute https URL with a host and without user
//     information, query or fragment (an issuer identifier, RFC 8414 §2);
//     http is accepted only for a loopback host (localhost, 127.0.0.0/8,
//     ::1; not names under .localhost), for development.
//   - ticket must be non-empty and must not contain spaces.
//   - All values together are at most [MaxChallengeHeaderLen] bytes, one
//     parameter at most [MaxChallengeParamLen].
func ParseChallenge(h http.Header) (*Challenge, error) {
	return parseChallenges(h.Values("WWW-Authenticate"))
}

func parseChallenges(values []string) (*Challenge, error) {
	total := 0
	for _, v := range values {
		total += len(v)
		if total > MaxChallengeHeaderLen {
			return nil, malformed("WWW-Authenticate is longer than %d bytes", MaxChallengeHeaderLen)
		}
	}
	var found *Challenge
	for _, v := range values {
		chs, err := splitChallenges(v)
		if err != nil {
			return nil, err
		}
		for _, c := range chs {
			if !strings.EqualFold(c.scheme, "UMA") {
				continue
			}
			if found != nil {
				return nil, malformed("more than one UMA challenge")
			}
			uc, err := umaChallenge(c)
			if err != nil {
				return nil, err
			}
			found = uc
		}
	}
	if found == nil {
		return nil, &ChallengeError{Kind: ErrNoChallenge}
	}
	return found, nil
}

type rawParam struct{ name, value string }

type rawChallenge struct {
	scheme  string
	token68 bool
	params  []rawParam
}

func umaChallenge(c rawChallenge) (*Challenge, error) {
	if c.token68 {
		return nil, malformed("UMA challenge carries a token68 instead of parameters")
	}
	if len(c.params) > maxParams {
		return nil, malformed("more than %d parameters", maxParams)
	}
	var ch Challenge
	seen := make(map[string]bool, len(c.params))
	for _, p := range c.params {
		name := strings.ToLower(p.name)
		if seen[name] {
			return nil, malformed("duplicate parameter %q", truncName(name))
		}
		seen[name] = true
		if len(p.value) > MaxChallengeParamLen {
			return nil, malformed("parameter %q is longer than %d bytes", truncName(name), MaxChallengeParamLen)
		}
		switch name {
		case "realm":
			ch.Realm = p.value
		case "as_uri":
			ch.ASURI = p.value
		case "ticket":
			ch.Ticket = p.value
		}
	}
	if !seen["as_uri"] {
		return nil, malformed("as_uri is missing")
	}
	if !seen["ticket"] {
		return nil, malformed("ticket is missing")
	}
	if ch.Ticket == "" || strings.ContainsAny(ch.Ticket, " \t") {
		return nil, malformed("ticket is empty or contains spaces")
	}
	if err := checkIssuerURI(ch.ASURI); err != nil {
		return nil, malformed("as_uri %s", err)
	}
	return &ch, nil
}

// truncName bounds a name from the challenge or the answer in an error.
func truncName(s string) string { return truncate.String(s, 40) }

// checkIssuerURI applies the as_uri rules of ParseChallenge. The error
// never quotes the URI.
func checkIssuerURI(s string) error {
	if s == "" || strings.ContainsAny(s, " \t") {
		return errors.New("is empty or contains spaces")
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return errors.New("is not an absolute URL with a host")
	}
	if u.User != nil {
		return errors.New("carries user information")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return errors.New("has a query or fragment (an issuer has neither)")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return errors.New("uses http on a non-loopback host (https is required)")
		}
	default:
		return errors.New("is neither https nor http on a loopback host")
	}
	return nil
}

// isLoopbackHost: plain http to h stays on this machine (localhost or a
// loopback IP literal).
func isLoopbackHost(h string) bool { return hostutil.PlainHTTPStaysLocal(h) }

// splitChallenges parses one WWW-Authenticate field value (RFC 9110
// §11.6.1):
//
//	WWW-Authenticate = #challenge
//	challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//	auth-param = token BWS "=" BWS ( token / quoted-string )
//
// A comma ends an auth-param; what follows is another auth-param when it
// reads "token BWS =" with a value, else the next challenge.
func splitChallenges(s string) ([]rawChallenge, error) {
	p := &lexer{s: s}
	var out []rawChallenge
	for {
		p.skipListSeparators()
		if p.eof() {
			break
		}
		scheme := p.token()
		if scheme == "" {
			return nil, malformed("expected an auth-scheme at byte %d", p.i)
		}
		c := rawChallenge{scheme: scheme}
		if p.eof() || p.peek() == ',' {
			out = append(out, c)
			continue
		}
		if p.peek() != ' ' {
			return nil, malformed("unexpected character after auth-scheme at byte %d", p.i)
		}
		p.skipSP()
		if p.eof() || p.peek() == ',' {
			out = append(out, c)
			continue
		}
		if p.atParam() {
			for {
				name := p.token()
				p.skipOWS()
				p.i++ // '=' (checked by atParam)
				p.skipOWS()
				val, err := p.value()
				if err != nil {
					return nil, err
				}
				c.params = append(c.params, rawParam{name: name, value: val})
				if len(c.params) > 4*maxParams {
					return nil, malformed("too many parameters")
				}
				p.skipOWS()
				if p.eof() {
					break
				}
				if p.peek() != ',' {
					return nil, malformed("expected ',' after a parameter at byte %d", p.i)
				}
				save := p.i
				p.skipListSeparators()
				if p.eof() || !p.atParam() {
					p.i = save
					break
				}
			}
		} else {
			if !p.token68() {
				return nil, malformed("expected parameters or a token68 at byte %d", p.i)
			}
			c.token68 = true
			p.skipOWS()
			if !p.eof() && p.peek() != ',' {
				return nil, malformed("unexpected character after token68 at byte %d", p.i)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

type lexer struct {
	s string
	i int
}

func (p *lexer) eof() bool  { return p.i >= len(p.s) }
func (p *lexer) peek() byte { return p.s[p.i] }

func (p *lexer) skipSP() {
	for !p.eof() && p.peek() == ' ' {
		p.i++
	}
}

func (p *lexer) skipOWS() {
	for !p.eof() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}

// skipListSeparators skips OWS and commas (empty list elements are
// allowed, RFC 9110 §5.6.1.2).
func (p *lexer) skipListSeparators() {
	for !p.eof() && (p.peek() == ' ' || p.peek() == '\t' || p.peek() == ',') {
		p.i++
	}
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (p *lexer) token() string {
	start := p.i
	for !p.eof() && isTchar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

// atParam reports whether an auth-param starts at the current position:
// token BWS "=" BWS followed by a token character or a quote.
func (p *lexer) atParam() bool {
	save := p.i
	defer func() { p.i = save }()
	if p.token() == "" {
		return false
	}
	p.skipOWS()
	if p.eof() || p.peek() != '=' {
		return false
	}
	p.i++
	p.skipOWS()
	return !p.eof() && (p.peek() == '"' || isTchar(p.peek()))
}

func (p *lexer) token68() bool {
	start := p.i
	for !p.eof() {
		c := p.peek()
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0 {
			p.i++
			continue
		}
		break
	}
	if p.i == start {
		return false
	}
	for !p.eof() && p.peek() == '=' {
		p.i++
	}
	return true
}

// value reads a token or a quoted-string. Inside quotes, HTAB, SP and
// visible ASCII are allowed and "\" escapes the next such character;
// control characters, DEL and non-ASCII bytes are refused.
func (p *lexer) value() (string, error) {
	if p.eof() {
		return "", malformed("missing parameter value")
	}
	if p.peek() != '"' {
		v := p.token()
		if v == "" {
			return "", malformed("invalid parameter value at byte %d", p.i)
		}
		return v, nil
	}
	p.i++
	var b strings.Builder
	for {
		if p.eof() {
			return "", malformed("unterminated quoted string")
		}
		c := p.peek()
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c == '\\':
			p.i++
			if p.eof() {
				return "", malformed("unterminated quoted string")
			}
			c = p.peek()
			if !qdtextOrQuote(c) {
				return "", malformed("invalid escaped character at byte %d", p.i)
			}
		case !qdtextOrQuote(c):
			return "", malformed("invalid character in quoted string at byte %d", p.i)
		}
		if b.Len() >= MaxChallengeParamLen+1 {
			return "", malformed("parameter value longer than %d bytes", MaxChallengeParamLen)
		}
		b.WriteByte(c)
		p.i++
	}
}

func qdtextOrQuote(c byte) bool { return c == '\t' || (c >= 0x20 && c < 0x7f) }
