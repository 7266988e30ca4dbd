package oxd

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"strings"
)

// maxRPTLen bounds an RPT taken from the Authorization header.
const maxRPTLen = 8192

// quoteString returns s as an RFC 9110 quoted-string: the value between
// double quotes, with '"' and '\' escaped by a backslash. It refuses
// control characters (CR and LF in particular: no header injection),
// DEL and non-ASCII bytes (obs-text), which have no place in a realm, a
// URI or a ticket.
func quoteString(s string) (string, error) {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t' || (c >= 0x20 && c < 0x7f):
			b.WriteByte(c)
		default:
			return "", errors.New("value contains a control or non-ASCII character")
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// umaChallenge builds the WWW-Authenticate value of UMA 2.0 Grant §3.2.1
// on one line: UMA realm="…", as_uri="…", ticket="…".
func umaChallenge(realm, asURI, ticket string) (string, error) {
	if ticket == "" {
		return "", errors.New("empty permission ticket")
	}
	qr, err := quoteString(realm)
	if err != nil {
		return "", errors.New("realm: " + err.Error())
	}
	qa, err := quoteString(asURI)
	if err != nil {
		return "", errors.New("as_uri: " + err.Error())
	}
	qt, err := quoteString(ticket)
	if err != nil {
		return "", errors.New("ticket from oxd: " + err.Error())
	}
	return "UMA realm=" + qr + ", as_uri=" + qa + ", ticket=" + qt, nil
}

// bearerRPT extracts the RPT of "Authorization: Bearer <token>" (RFC 6750
// §2.1; the scheme is case-insensitive, RFC 9110 §11.1). present reports
// that the request has an Authorization header at all, even one that is
// not a usable Bearer credential (another scheme, several headers, a
// malformed token): such a request has no RPT. The RPT is never read from
// anywhere else (query, form, cookie).
func bearerRPT(r *http.Request) (rpt string, present bool) {
	vals := r.Header["Authorization"]
	if len(vals) == 0 {
		return "", false
	}
	if len(vals) != 1 {
		return "", true
	}
	v := vals[0]
	if len(v) < 7 || !strings.EqualFold(v[:6], "Bearer") || v[6] != ' ' {
		return "", true
	}
	tok := strings.TrimLeft(v[7:], " ")
	if !validB64Token(tok) {
		return "", true
	}
	return tok, true
}

// validB64Token checks RFC 6750's b64token: 1*( ALPHA / DIGIT /
// "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func validB64Token(s string) bool {
	if s == "" || len(s) > maxRPTLen {
		return false
	}
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// hashRPT is the key under which an RPT is known: its SHA-256, never the
// RPT itself.
func hashRPT(rpt string) [sha256.Size]byte {
	// A stack buffer spares the heap copy of the conversion for RPTs of
	// usual sizes (opaque tokens, small JWTs).
	var buf [1024]byte
	if len(rpt) <= len(buf) {
		n := copy(buf[:], rpt)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(rpt))
}
