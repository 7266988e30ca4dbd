package devop

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// digest is the map key under which secrets (tokens, codes, session ids)
// are stored: the OP never keeps a bearer value as a map key or compares
// it with ==.
type digest [sha256.Size]byte

func digestOf(s string) digest { return sha256.Sum256([]byte(s)) }

// randomValue returns a fresh unguessable value (256 bits, base64url).
func randomValue() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// randomID returns a fresh unguessable identifier (128 bits, base64url).
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// secretEqual compares two secrets in constant time (for equal lengths).
func secretEqual(a, b string) bool {
	ha, hb := digestOf(a), digestOf(b)
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

type tokenKind int

const (
	kindAccess tokenKind = iota + 1
	kindRefresh
	kindRPT
	kindPCT
)

// permission is one UMA permission: a resource and scopes on it.
type permission struct {
	ResourceID string   `json:"resource_id"`
	Scopes     []string `json:"resource_scopes"`
	Exp        int64    `json:"exp,omitempty"`
}

// tokenRec is an issued opaque token (access token, refresh token, RPT, PCT).
type tokenRec struct {
	kind     tokenKind
	clientID string
	subject  string // "" for client_credentials tokens and RPTs
	scopes   []string
	authTime time.Time
	issued   time.Time
	expires  time.Time
	grantID  string // tokens from one code share it (code replay, refresh reuse)
	sid      string // refresh tokens: the OP session of the login, for the ID tokens of refreshes
	used     bool   // refresh token already rotated
	perms    []permission
	claims   map[string]string // PCT: claims gathered for the client
}

type codeRec struct {
	clientID    string
	redirectURI string
	subject     string
	scopes      []string
	nonce       string
	challenge   string
	authTime    time.Time
	expires     time.Time
	used        bool
	grantID     string
	sid         string
}

type sessionRec struct {
	subject  string
	authTime time.Time
	expires  time.Time
	sid      string          // the OP session's id, the ID token's sid
	clients  map[string]bool // client_ids given a code in this session; op.mu
}

type interactionKind int

const (
	iaLogin interactionKind = iota + 1
	iaLogout
	iaClaims
)

// interaction is a pending browser step (login form, logout confirmation,
// claims form). Its id travels in the form; browser is the digest of the
// browser-binding cookie that must accompany the POST (CSRF defence).
type interaction struct {
	kind     interactionKind
	browser  digest
	expires  time.Time
	attempts int

	auth authRequest // iaLogin

	// iaLogout
	logoutRedirect string
	logoutState    string

	// iaClaims
	clientID       string
	ticket         string
	claimsRedirect string
	claimsState    string
	required       []string
}

type resourceRec struct {
	owner string // client_id of the PAT that registered it
	desc  resourceDesc
}

type ticketRec struct {
	owner    string // client_id of the resource server's PAT
	perms    []permission
	claims   map[string]string
	required []string // claims asked for by the last need_info
	client   string   // when set, only this client may redeem the ticket
	expires  time.Time
}

type store struct {
	clients      map[string]*clientRec
	tokens       map[digest]*tokenRec
	codes        map[digest]*codeRec
	sessions     map[digest]*sessionRec
	interactions map[digest]*interaction
	resources    map[string]*resourceRec
	tickets      map[digest]*ticketRec
	jtis         map[digest]time.Time // client assertion jti → its exp (replay detection)
	lastSweep    time.Time
}

func newStore() *store {
	return &store{
		clients:      map[string]*clientRec{},
		tokens:       map[digest]*tokenRec{},
		codes:        map[digest]*codeRec{},
		sessions:     map[digest]*sessionRec{},
		interactions: map[digest]*interaction{},
		resources:    map[string]*resourceRec{},
		tickets:      map[digest]*ticketRec{},
		jtis:         map[digest]time.Time{},
	}
}

// sweepLocked drops expired state at most once a minute. op.mu is held.
func (op *OP) sweepLocked(now time.Time) {
	st := op.st
	if now.Sub(st.lastSweep) < time.Minute && !st.lastSweep.IsZero() {
		return
	}
	st.lastSweep = now
	for k, v := range st.tokens {
		if now.After(v.expires) {
			delete(st.tokens, k)
		}
	}
	for k, v := range st.codes {
		if now.After(v.expires) {
			delete(st.codes, k)
		}
	}
	for k, v := range st.sessions {
		if now.After(v.expires) {
			delete(st.sessions, k)
		}
	}
	for k, v := range st.interactions {
		if now.After(v.expires) {
			delete(st.interactions, k)
		}
	}
	for k, v := range st.tickets {
		if now.After(v.expires) {
			delete(st.tickets, k)
		}
	}
	for k, exp := range st.jtis {
		if !now.Before(exp) {
			delete(st.jtis, k)
		}
	}
}

// newTokenLocked stores rec under a fresh value and returns the value.
func (op *OP) newTokenLocked(rec *tokenRec) string {
	op.sweepLocked(rec.issued)
	v := randomValue()
	op.st.tokens[digestOf(v)] = rec
	return v
}

// tokenLocked returns the live token record for value, or nil.
func (op *OP) tokenLocked(value string, now time.Time) *tokenRec {
	if value == "" {
		return nil
	}
	rec := op.st.tokens[digestOf(value)]
	if rec == nil || now.After(rec.expires) {
		return nil
	}
	return rec
}

// revokeGrantLocked deletes every token issued under grantID.
func (op *OP) revokeGrantLocked(grantID string) {
	if grantID == "" {
		return
	}
	for k, v := range op.st.tokens {
		if v.grantID == grantID {
			delete(op.st.tokens, k)
		}
	}
}

// Revoke invalidates a token issued by the OP (access token, refresh token,
// RPT, PAT or PCT) and reports whether it was live. Revoking a refresh
// token also revokes the tokens of the same grant.
func (op *OP) Revoke(token string) bool {
	op.mu.Lock()
	defer op.mu.Unlock()
	rec := op.tokenLocked(token, op.now())
	if rec == nil {
		return false
	}
	delete(op.st.tokens, digestOf(token))
	if rec.kind == kindRefresh {
		op.revokeGrantLocked(rec.grantID)
	}
	return true
}

// ---- HTTP helpers ----

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// oauthError is an RFC 6749 §5.2 style error.
type oauthError struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// Basic asks for a WWW-Authenticate: Basic challenge (invalid_client
	// after HTTP Basic authentication).
	Basic bool `json:"-"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func oauthErr(status int, code, desc string) *oauthError {
	return &oauthError{Status: status, Code: code, Description: desc}
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, oauthError{Code: code, Description: desc})
}

func writeErr(w http.ResponseWriter, e *oauthError) {
	if e.Basic {
		w.Header().Set("WWW-Authenticate", `Basic realm="oxdtest"`)
	}
	writeJSON(w, e.Status, e)
}

func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "method not allowed")
	return false
}

// readForm parses an application/x-www-form-urlencoded POST body (bounded
// by the caller's MaxBytesReader) and rejects repeated parameters
// (RFC 6749 §3.1).
func readForm(r *http.Request) (url.Values, *oauthError) {
	if r.Method != http.MethodPost {
		return nil, oauthErr(http.StatusMethodNotAllowed, "invalid_request", "POST required")
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "content type must be application/x-www-form-urlencoded")
	}
	if err := r.ParseForm(); err != nil {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "malformed or oversized form body")
	}
	if err := noRepeats(r.PostForm); err != nil {
		return nil, err
	}
	return r.PostForm, nil
}

func noRepeats(v url.Values) *oauthError {
	for k, vs := range v {
		if len(vs) > 1 {
			return oauthErr(http.StatusBadRequest, "invalid_request", "parameter "+k+" repeated")
		}
	}
	return nil
}

// readJSON decodes a JSON body (bounded by the caller's MaxBytesReader).
func readJSON(r *http.Request, v any) error {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "" && mt != "application/json" {
		return errors.New("content type must be application/json")
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		return errors.New("malformed or oversized JSON body")
	}
	if dec.More() {
		return errors.New("trailing data after JSON body")
	}
	return nil
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func splitScope(s string) []string { return strings.Fields(s) }

func joinScope(s []string) string { return strings.Join(s, " ") }

func hasScope(scopes []string, s string) bool { return slices.Contains(scopes, s) }

// intersect returns the elements of a that are in b, in a's order, once.
func intersect(a, b []string) []string {
	out := []string{}
	for _, s := range a {
		if slices.Contains(b, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// appendQuery adds params to the query of a URL given as a string,
// keeping its existing query as it is.
func appendQuery(raw string, params url.Values) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	enc := params.Encode()
	if u.RawQuery == "" {
		u.RawQuery = enc
	} else if enc != "" {
		u.RawQuery += "&" + enc
	}
	return u.String()
}
