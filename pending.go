package oxd

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2/memstore"
)

// A login in progress (the browser was sent to the OP and has not come
// back yet) is kept in the browser, not on the server: one cookie per
// pending login, encrypted and authenticated with AES-256-GCM under
// Config.PendingLoginKey. Anonymous traffic therefore creates no session
// and holds nothing on the server but the engine's state and nonce (which
// the engine bounds). The session is created at the callback, after the
// session token is renewed.
//
// Cookie name: the prefix ("__Host-oxd-login-" with Secure cookies,
// "oxd-login-" with InsecureCookies) and 22 characters naming the state
// (a truncated SHA-256), so each tab's login has its own cookie and the
// callback finds it from the state alone. Attributes: Path=/, HttpOnly,
// SameSite=Lax (it must come back on the OP's top-level redirect), Secure
// unless InsecureCookies, Max-Age = PendingLoginTTL. Value: base64url of
// nonce ‖ AES-GCM(version ‖ created ‖ restarts ‖ flags ‖ state ‖ return-to) with
// the cookie name and the site as additional data, so a value cannot be
// moved to another state's cookie or another site.
const (
	pendingCookieSecurePrefix = "__Host-oxd-login-"
	pendingCookiePlainPrefix  = "oxd-login-"
	pendingCookieVersion      = 1
	// PendingLoginKeySize is the size of Config.PendingLoginKey.
	PendingLoginKeySize = 32
	// maxPendingReturnTo bounds the return-to kept in a pending-login
	// cookie; a longer request URI returns to Config.DefaultReturnTo.
	maxPendingReturnTo = 1024
	// maxPendingCookieBytes bounds the values of all pending-login cookies
	// of one browser together (besides PendingLoginLimit on their number),
	// so that the Cookie header stays within common proxy limits.
	maxPendingCookieBytes = 8 << 10
	// pendingSpent replaces the value of a used pending-login cookie for
	// pendingSpentAge, so that a replayed callback in the same browser is
	// told apart from a browser that lost its cookies.
	pendingSpent    = "spent"
	pendingSpentAge = 5 * 60
	// maxPendingCookiesRead bounds how many of a request's pending-login
	// cookies are examined (and cleaned up) when a login starts.
	maxPendingCookiesRead = 32
)

// pendingCodec seals and opens pending-login cookies.
type pendingCodec struct {
	aead   cipher.AEAD
	site   string
	prefix string
	secure bool
	ttl    time.Duration
	limit  int
}

// errPendingKeyRequired is returned by New when Config.PendingLoginKey is
// needed and missing.
var errPendingKeyRequired = errors.New("oxd: Config.PendingLoginKey is required with a session store other than scs's in-memory store: every replica must open the pending-login cookies the others set; give each the same 32 random bytes (keep them secret, like a signing key)")

// newPendingCodec builds the codec of cfg (validated) for the store of
// sessions. Without a key it uses a random one, which is only allowed with
// scs's in-memory store (sessions die with the process anyway, and a
// second process could not serve them either).
func newPendingCodec(cfg *Config, oxdID string, store any) (*pendingCodec, error) {
	key := cfg.PendingLoginKey
	switch {
	case len(key) == 0:
		if _, ok := store.(*memstore.MemStore); !ok {
			return nil, errPendingKeyRequired
		}
		key = make([]byte, PendingLoginKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	case len(key) != PendingLoginKeySize:
		return nil, errors.New("oxd: Config.PendingLoginKey must be 32 bytes")
	case isWeakKey(key):
		return nil, errors.New("oxd: Config.PendingLoginKey is not random (repeated bytes)")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	c := &pendingCodec{aead: aead, site: oxdID, secure: !cfg.InsecureCookies,
		ttl: cfg.PendingLoginTTL, limit: cfg.PendingLoginLimit}
	c.prefix = pendingCookiePlainPrefix
	if c.secure {
		c.prefix = pendingCookieSecurePrefix
	}
	return c, nil
}

// isWeakKey refuses keys made of one repeated byte (all zeros, a
// placeholder), which are certainly not random.
func isWeakKey(k []byte) bool {
	for _, b := range k[1:] {
		if b != k[0] {
			return false
		}
	}
	return true
}

// name is the cookie name of the pending login with this state.
func (c *pendingCodec) name(state string) string {
	h := sha256.Sum256([]byte("oxd pending login\x00" + state))
	return c.prefix + base64.RawURLEncoding.EncodeToString(h[:16])
}

func (c *pendingCodec) aad(name string) []byte {
	return []byte("oxd.pending.v1\x00" + c.site + "\x00" + name)
}

// seal returns the cookie value of p.
func (c *pendingCodec) seal(p pendingLogin) string {
	pt := make([]byte, 0, 32+len(p.State)+len(p.ReturnTo))
	pt = append(pt, pendingCookieVersion)
	pt = binary.AppendVarint(pt, p.Created.UnixNano())
	pt = binary.AppendUvarint(pt, uint64(max(p.Restarts, 0)))
	var flags byte
	if p.Silent {
		flags |= 1
	}
	pt = append(pt, flags)
	pt = appendString(pt, p.State)
	pt = appendString(pt, p.ReturnTo)
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(pt)+c.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(c.aead.Seal(nonce, nonce, pt, c.aad(c.name(p.State))))
}

// open returns the pending login of the cookie name=value, or false when
// the value was not sealed by this codec for that name.
func (c *pendingCodec) open(name, value string) (pendingLogin, bool) {
	if len(value) > 4096 {
		return pendingLogin{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(value)
	ns := c.aead.NonceSize()
	if err != nil || len(b) < ns+c.aead.Overhead() {
		return pendingLogin{}, false
	}
	pt, err := c.aead.Open(nil, b[:ns], b[ns:], c.aad(name))
	if err != nil || len(pt) == 0 || pt[0] != pendingCookieVersion {
		return pendingLogin{}, false
	}
	d := decoder{b: pt[1:]}
	created := d.time()
	restarts := d.uvarint()
	flags := d.byte()
	p := pendingLogin{Created: created, Restarts: int(min(restarts, maxLoginRestarts+1)), Silent: flags&1 != 0}
	p.State = d.string()
	p.ReturnTo = d.string()
	if d.err || flags > 1 || len(d.b) != 0 || c.name(p.State) != name {
		return pendingLogin{}, false
	}
	return p, true
}

func (c *pendingCodec) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: c.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

type pendingCookie struct {
	name string
	size int
	p    pendingLogin
}

// put sets the cookie of p, and removes this browser's pending-login
// cookies that are expired, unreadable, or beyond PendingLoginLimit and the
// size bound (oldest first).
func (c *pendingCodec) put(w http.ResponseWriter, r *http.Request, p pendingLogin, now time.Time) {
	var keep []pendingCookie
	read := 0
	for _, ck := range r.Cookies() {
		if !strings.HasPrefix(ck.Name, c.prefix) {
			continue
		}
		if read++; read > maxPendingCookiesRead {
			break
		}
		q, ok := c.open(ck.Name, ck.Value)
		if !ok || now.Sub(q.Created) >= c.ttl || q.Created.After(now.Add(time.Minute)) {
			http.SetCookie(w, c.cookie(ck.Name, "", -1))
			continue
		}
		keep = append(keep, pendingCookie{name: ck.Name, size: len(ck.Value), p: q})
	}
	name := c.name(p.State)
	value := c.seal(p)
	keep = slices.DeleteFunc(keep, func(e pendingCookie) bool { return e.name == name })
	slices.SortStableFunc(keep, func(a, b pendingCookie) int { return a.p.Created.Compare(b.p.Created) })
	total := len(value)
	for _, e := range keep {
		total += e.size
	}
	for len(keep) > 0 && (len(keep)+1 > c.limit || total > maxPendingCookieBytes) {
		http.SetCookie(w, c.cookie(keep[0].name, "", -1))
		total -= keep[0].size
		keep = keep[1:]
	}
	http.SetCookie(w, c.cookie(name, value, int(c.ttl/time.Second)))
}

// take removes the cookie of the pending login with this state and returns
// it. present reports whether the request carried any pending-login
// cookie at all (to tell a missing cookie from a foreign state).
func (c *pendingCodec) take(w http.ResponseWriter, r *http.Request, state string) (p pendingLogin, found, present bool) {
	name := c.name(state)
	read := 0
	for _, ck := range r.Cookies() {
		if !strings.HasPrefix(ck.Name, c.prefix) {
			continue
		}
		present = true
		if read++; found || read > maxPendingCookiesRead {
			continue
		}
		if ck.Name == name {
			http.SetCookie(w, c.cookie(name, pendingSpent, pendingSpentAge)) // used once, whatever follows
		}
		q, ok := c.open(ck.Name, ck.Value)
		if ok && c.matches(ck.Name, q, state) {
			p, found = q, true
		}
	}
	return p, found, present
}

// matches reports whether the pending login q, read from the cookie
// cookieName, is the one of state: the cookie is the state's, and the
// state sealed inside is equal (constant time).
func (c *pendingCodec) matches(cookieName string, q pendingLogin, state string) bool {
	return cookieName == c.name(state) && subtle.ConstantTimeCompare([]byte(q.State), []byte(state)) == 1
}
