package oxd

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/oxdgo/oxd/oxdclient"
)

// Keys of the values this package keeps in the scs session. Other code must
// not write them.
const (
	sessionKeyUser = "oxd.user"
	// sessionKeyPending held the pending logins before they moved to
	// cookies; only sessions written by earlier versions have it.
	sessionKeyPending = "oxd.pending"
)

func init() {
	// scs encodes session values with gob inside an interface map: every
	// stored type must be registered, or Commit fails with "type not
	// registered for interface".
	gob.Register(&User{})
	// Pending logins were kept in the session before they moved to
	// cookies: sessions written then still hold them (until they expire)
	// and must keep decoding.
	gob.Register(pendingLogins{})
}

// User is the logged-in user of a session: the subject, the claims of the
// ID token and of userinfo, and the tokens. It is read-only: the middleware
// replaces it (never modifies it) when tokens are refreshed.
//
// The tokens are not fields: they are not written by encoding/json, fmt
// (%v, %+v, %#v) or log/slog. Read the access token with [User.AccessToken];
// the refresh token and the ID token never leave the package.
type User struct {
	// Subject is the "sub" claim of the ID token (equal to userinfo's).
	Subject string
	// Claims are the userinfo claims (name, email, …). oxd 3.x sends every
	// claim as an array of strings; [oxdclient.Claims] reads both shapes.
	Claims oxdclient.Claims
	// IDTokenClaims are the claims of the ID token (iss, aud, acr,
	// auth_time, …).
	IDTokenClaims oxdclient.Claims
	// AccessTokenExpiry is when the access token expires; zero when the OP
	// sent no expires_in. The middleware refreshes the token (when it has
	// a refresh token) Config.RefreshBefore before this time.
	AccessTokenExpiry time.Time
	// AuthenticatedAt is when the callback completed.
	AuthenticatedAt time.Time

	// refreshAt is when the access token should be refreshed (zero:
	// never, as without a refresh token).
	refreshAt time.Time

	accessToken  oxdclient.Secret
	refreshToken oxdclient.Secret
	idToken      oxdclient.Secret
}

// AccessToken returns the OP's access token, for calling APIs on the
// user's behalf. It is a [oxdclient.Secret]: use Reveal to put it into an
// Authorization header.
func (u *User) AccessToken() oxdclient.Secret { return u.accessToken }

// Claim returns the first value of a claim, from userinfo or, when absent
// there, from the ID token: u.Claim("email"), u.Claim("name").
func (u *User) Claim(name string) string { return u.claim(name) }

func (u *User) claim(name string) string {
	if v := u.Claims.String(name); v != "" {
		return v
	}
	return u.IDTokenClaims.String(name)
}

// String returns a description without tokens.
func (u User) String() string { return "oxd.User{Subject: " + fmt.Sprintf("%q", u.Subject) + "}" }

// Format prints the same as String for every verb, so that no token can be
// printed through fmt.
func (u User) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(u.String())) }

// LogValue implements slog.LogValuer: the subject only.
func (u User) LogValue() slog.Value {
	return slog.GroupValue(slog.String("subject", u.Subject))
}

// setExpiry sets the access token's expiry from expires_in (seconds; 0 or
// negative: unknown) and when to refresh it: lead before expiry, or at half
// the lifetime when lead is more than half of it.
func (u *User) setExpiry(now time.Time, expiresIn int64, lead time.Duration) {
	u.AccessTokenExpiry, u.refreshAt = time.Time{}, time.Time{}
	if expiresIn <= 0 {
		return
	}
	life := time.Duration(expiresIn) * time.Second
	u.AccessTokenExpiry = now.Add(life)
	if u.refreshToken == "" {
		return
	}
	if lead > life/2 {
		lead = life / 2
	}
	u.refreshAt = u.AccessTokenExpiry.Add(-lead)
}

// expired reports whether the access token is known to have expired.
func (u *User) expired(now time.Time) bool {
	return !u.AccessTokenExpiry.IsZero() && !now.Before(u.AccessTokenExpiry)
}

// refreshDue reports whether the access token should be refreshed now.
func (u *User) refreshDue(now time.Time) bool {
	return !u.refreshAt.IsZero() && !now.Before(u.refreshAt)
}

// Binary encoding of a User for the session store (through gob, which calls
// GobEncode/GobDecode). Version byte, then length-prefixed fields.
//
// Version 2 stores the ID token's claims only when they cannot be derived
// from the stored ID token: when IDTokenClaims are exactly (key for key,
// byte for byte) what idTokenClaims derives from the ID token's payload,
// a mode byte says so and the claims are re-derived on decoding, which
// saves a few hundred bytes of Redis per session. Version 1 (claims always
// stored) is still read.
const (
	userEncodingV1      = 1
	userEncodingVersion = 2
)

// Modes of the ID token claims in encoding version 2.
const (
	idClaimsStored  = 0 // the claims follow
	idClaimsDerived = 1 // the claims are idTokenClaims(idToken)
)

// maxUserEncoding bounds what GobDecode accepts.
const maxUserEncoding = 1 << 20

// GobEncode implements gob.GobEncoder so that scs can store a User (with
// its tokens) although the tokens are unexported.
func (u *User) GobEncode() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, userEncodingVersion)
	b = appendString(b, u.Subject)
	b = appendTime(b, u.AccessTokenExpiry)
	b = appendTime(b, u.AuthenticatedAt)
	b = appendTime(b, u.refreshAt)
	b = appendString(b, string(u.accessToken))
	b = appendString(b, string(u.refreshToken))
	b = appendString(b, string(u.idToken))
	b = appendClaims(b, u.Claims)
	if derived, ok := idTokenClaims(string(u.idToken)); ok && sameClaims(derived, u.IDTokenClaims) {
		return append(b, idClaimsDerived), nil
	}
	b = append(b, idClaimsStored)
	b = appendClaims(b, u.IDTokenClaims)
	return b, nil
}

// GobDecode implements gob.GobDecoder.
func (u *User) GobDecode(b []byte) error {
	if len(b) == 0 || len(b) > maxUserEncoding || (b[0] != userEncodingVersion && b[0] != userEncodingV1) {
		return errUserEncoding
	}
	d := decoder{b: b[1:]}
	var v User
	v.Subject = d.string()
	v.AccessTokenExpiry = d.time()
	v.AuthenticatedAt = d.time()
	v.refreshAt = d.time()
	v.accessToken = oxdclient.Secret(d.string())
	v.refreshToken = oxdclient.Secret(d.string())
	v.idToken = oxdclient.Secret(d.string())
	v.Claims = d.claims()
	mode := byte(idClaimsStored)
	if b[0] == userEncodingVersion {
		mode = d.byte()
	}
	switch mode {
	case idClaimsStored:
		v.IDTokenClaims = d.claims()
	case idClaimsDerived:
		c, ok := idTokenClaims(string(v.idToken))
		if !ok {
			return errUserEncoding
		}
		v.IDTokenClaims = c
	default:
		return errUserEncoding
	}
	if d.err || len(d.b) != 0 {
		return errUserEncoding
	}
	*u = v
	return nil
}

// idTokenClaims derives the claims of a JWT's payload in the shape oxd
// 3.x answers id_token_claims with (every claim an array of strings, null
// claims and null array elements left out), as the drop-in engine writes
// it. ok is false when the token is not a JWT with a JSON object payload or
// a claim is not a string, number, boolean or array of them. The signature
// is not checked: the token was validated at login, and a derived claim is
// only ever used when it equals, byte for byte, the claim the oxd server
// answered (see GobEncode).
func idTokenClaims(jwt string) (oxdclient.Claims, bool) {
	first := strings.IndexByte(jwt, '.')
	last := strings.LastIndexByte(jwt, '.')
	if first < 0 || last <= first {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(jwt[first+1 : last])
	if err != nil {
		return nil, false
	}
	if c, ok := flatClaims(payload); ok {
		return c, true
	}
	return payloadClaims(payload)
}

// payloadClaims is the general path of idTokenClaims.
func payloadClaims(payload []byte) (oxdclient.Claims, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil || m == nil {
		return nil, false
	}
	out := make(oxdclient.Claims, len(m))
	for k, raw := range m {
		v, ok := claimAsStrings(raw)
		if !ok {
			return nil, false
		}
		if v != nil {
			out[k] = v
		}
	}
	return out, true
}

// flatClaims is the fast path of idTokenClaims, for the common payload: a
// JSON object whose keys and values are strings without escapes, numbers,
// booleans or null. It gives the same claims as the general path, and ok
// false for anything else (the general path then decides).
func flatClaims(p []byte) (oxdclient.Claims, bool) {
	i := skipSpace(p, 0)
	if i >= len(p) || p[i] != '{' {
		return nil, false
	}
	out := make(oxdclient.Claims, 16)
	i = skipSpace(p, i+1)
	if i < len(p) && p[i] == '}' {
		return out, skipSpace(p, i+1) == len(p)
	}
	for {
		key, j, ok := plainStringAt(p, i)
		if !ok {
			return nil, false
		}
		i = skipSpace(p, j)
		if i >= len(p) || p[i] != ':' {
			return nil, false
		}
		i = skipSpace(p, i+1)
		if i >= len(p) {
			return nil, false
		}
		var v json.RawMessage
		switch c := p[i]; {
		case c == '"':
			raw, j, ok := plainStringAt(p, i)
			if !ok {
				return nil, false
			}
			v, i = slices.Concat([]byte("["), raw, []byte("]")), j
		case c == '-' || (c >= '0' && c <= '9'):
			j := i
			for j < len(p) && strings.IndexByte("+-.eE0123456789", p[j]) >= 0 {
				j++
			}
			v, i = slices.Concat([]byte(`["`), p[i:j], []byte(`"]`)), j
		case bytes.HasPrefix(p[i:], []byte("true")):
			v, i = json.RawMessage(`["true"]`), i+4
		case bytes.HasPrefix(p[i:], []byte("false")):
			v, i = json.RawMessage(`["false"]`), i+5
		case bytes.HasPrefix(p[i:], []byte("null")):
			i += 4
		default:
			return nil, false
		}
		k := string(key[1 : len(key)-1])
		if _, dup := out[k]; dup {
			return nil, false
		}
		if v != nil {
			out[k] = v
		}
		i = skipSpace(p, i)
		if i >= len(p) {
			return nil, false
		}
		switch p[i] {
		case ',':
			i = skipSpace(p, i+1)
		case '}':
			return out, skipSpace(p, i+1) == len(p)
		default:
			return nil, false
		}
	}
}

func skipSpace(p []byte, i int) int {
	for i < len(p) && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') {
		i++
	}
	return i
}

// plainStringAt returns the JSON string literal at p[i] (quotes included)
// and the index after it, when it is a plainJSONString without control
// characters.
func plainStringAt(p []byte, i int) ([]byte, int, bool) {
	if i >= len(p) || p[i] != '"' {
		return nil, 0, false
	}
	end := bytes.IndexByte(p[i+1:], '"')
	if end < 0 {
		return nil, 0, false
	}
	raw := p[i : i+end+2]
	for _, c := range raw {
		if c < 0x20 {
			return nil, 0, false
		}
	}
	if !plainJSONString(raw) {
		return nil, 0, false
	}
	return raw, i + end + 2, true
}

// claimAsStrings is one claim's JSON value as a JSON array of strings (nil
// for null). Strings without escapes, numbers and booleans are rewritten
// directly; anything else goes through encoding/json.
func claimAsStrings(raw json.RawMessage) (json.RawMessage, bool) {
	switch {
	case len(raw) == 0:
		return nil, false
	case string(raw) == "null":
		return nil, true
	case raw[0] == '"' && plainJSONString(raw):
		return slices.Concat([]byte("["), raw, []byte("]")), true
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9') || string(raw) == "true" || string(raw) == "false":
		return slices.Concat([]byte(`["`), raw, []byte(`"]`)), true
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	var vals []string
	if arr, isArr := v.([]any); isArr {
		vals = make([]string, 0, len(arr))
		for _, x := range arr {
			if x == nil {
				continue
			}
			s, ok := scalarClaim(x)
			if !ok {
				return nil, false
			}
			vals = append(vals, s)
		}
	} else {
		s, ok := scalarClaim(v)
		if !ok {
			return nil, false
		}
		vals = []string{s}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(vals); err != nil {
		return nil, false
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), true
}

// plainJSONString reports whether the JSON string literal raw has no
// escapes and only characters encoding/json writes as they are (without
// HTML escaping), so that it is its own re-encoding.
func plainJSONString(raw []byte) bool {
	if len(raw) < 2 || raw[len(raw)-1] != '"' {
		return false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.ContainsAny(inner, "\\\"") || !utf8.Valid(inner) {
		return false
	}
	return !bytes.Contains(inner, []byte("\u2028")) && !bytes.Contains(inner, []byte("\u2029"))
}

func scalarClaim(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// sameClaims reports whether a and b hold the same claims with byte-equal
// values.
func sameClaims(a, b oxdclient.Claims) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

var errUserEncoding = errors.New("oxd: malformed user in session")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func appendClaims(b []byte, c oxdclient.Claims) []byte {
	b = binary.AppendUvarint(b, uint64(len(c)))
	for k, v := range c {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	return b
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	if d.err {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err || len(d.b) == 0 {
		d.err = true
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) time() time.Time {
	if d.err {
		return time.Time{}
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return time.Time{}
	}
	d.b = d.b[n:]
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v)
}

func (d *decoder) claims() oxdclient.Claims {
	n := d.uvarint()
	if d.err {
		return nil
	}
	// Each claim needs at least two bytes: refuse counts the input cannot
	// hold before allocating.
	if n > uint64(len(d.b))/2 {
		d.err = true
		return nil
	}
	if n == 0 {
		return nil
	}
	c := make(oxdclient.Claims, n)
	for range n {
		k := d.string()
		v := d.bytes()
		if d.err {
			return nil
		}
		c[k] = json.RawMessage(append([]byte(nil), v...))
	}
	return c
}

// pendingLogin is one login started in this browser and not finished yet,
// kept in a pending-login cookie (pending.go).
type pendingLogin struct {
	State    string
	ReturnTo string
	Created  time.Time
	// Restarts counts how often this login was restarted after its state
	// expired.
	Restarts int
	// Silent: started with prompt=none (SilentReauthentication); an OP
	// answer that needs interaction restarts it with the usual prompt.
	Silent bool
}

// pendingLogins is the type under which earlier versions kept pending
// logins in the session ("oxd.pending"); registered with gob only so that
// such sessions still decode.
type pendingLogins []pendingLogin

// userKey is the context key of the *User put by RequireLogin.
type userKey struct{}

// UserFrom returns the logged-in user that [Auth.RequireLogin] put into the
// request context. ok is false outside RequireLogin.
func UserFrom(ctx context.Context) (u *User, ok bool) {
	u, ok = ctx.Value(userKey{}).(*User)
	return u, ok && u != nil
}

// withUser returns ctx carrying u.
func withUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// pendingEntry is an entry of a list of round trips in progress kept in
// the session (pending logins, UMA claims requests), found by its state.
type pendingEntry interface {
	pendingState() string
	pendingCreated() time.Time
}

func (p pendingLogin) pendingState() string         { return p.State }
func (p pendingLogin) pendingCreated() time.Time    { return p.Created }
func (p umaPendingClaim) pendingState() string      { return p.State }
func (p umaPendingClaim) pendingCreated() time.Time { return p.Created }

// putPendingEntry appends p to the list kept under key, dropping the entries
// older than ttl and, beyond limit, the oldest.
func putPendingEntry[L ~[]E, E pendingEntry](c *core, ctx context.Context, key string, p E, ttl time.Duration, limit int) {
	old, _ := c.sm.Get(ctx, key).(L)
	now := c.now()
	list := make(L, 0, len(old)+1)
	for _, e := range old {
		if now.Sub(e.pendingCreated()) < ttl {
			list = append(list, e)
		}
	}
	list = append(list, p)
	if n := len(list) - limit; n > 0 {
		list = slices.Delete(list, 0, n)
	}
	c.sm.Put(ctx, key, list)
}

// takePendingEntry removes and returns the entry of the list kept under key
// whose state is state. The comparison runs in constant time over every
// entry, so the time taken tells nothing about the states kept.
func takePendingEntry[L ~[]E, E pendingEntry](c *core, ctx context.Context, key, state string) (p E, found bool) {
	old, _ := c.sm.Get(ctx, key).(L)
	want := []byte(state)
	idx := -1
	for i := range old {
		if subtle.ConstantTimeCompare([]byte(old[i].pendingState()), want) == 1 {
			idx = i
		}
	}
	if idx < 0 {
		return p, false
	}
	p = old[idx]
	list := slices.Delete(slices.Clone(old), idx, idx+1)
	if len(list) == 0 {
		c.sm.Remove(ctx, key)
	} else {
		c.sm.Put(ctx, key, list)
	}
	return p, true
}
