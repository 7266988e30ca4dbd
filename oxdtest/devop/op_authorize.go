package devop

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// authRequest is a validated authorization request.
type authRequest struct {
	clientID    string
	redirectURI string
	scopes      []string
	state       string
	nonce       string
	challenge   string
	forceLogin  bool
	maxAge      int // -1 when absent
}

// maxLoginAttempts bounds password guesses per login interaction.
const maxLoginAttempts = 5

// maxParamLen bounds the length of free-form request parameters
// (state, nonce) the OP stores and echoes.
const maxParamLen = 2048

func (op *OP) cookiePath() string {
	if op.basePath == "" {
		return "/"
	}
	return op.basePath
}

func (op *OP) sessionCookieName() string { return "oxdtest_sid_" + op.cookieSfx }
func (op *OP) browserCookieName() string { return "oxdtest_ua_" + op.cookieSfx }

func (op *OP) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     op.cookiePath(),
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   op.secureCook,
		SameSite: http.SameSiteLaxMode,
	})
}

// browserBinding returns the digest of this browser's binding cookie,
// setting a new cookie when there is none. Interactions (login form,
// logout confirmation, claims form) are bound to it, so a form POST from
// another site (which SameSite=Lax keeps the cookie out of) is refused.
func (op *OP) browserBinding(w http.ResponseWriter, r *http.Request) digest {
	if c, err := r.Cookie(op.browserCookieName()); err == nil && len(c.Value) >= 43 {
		return digestOf(c.Value)
	}
	v := randomValue()
	op.setCookie(w, op.browserCookieName(), v, 0)
	return digestOf(v)
}

// browserMatches reports whether the request carries the binding cookie
// the interaction was created for.
func (op *OP) browserMatches(r *http.Request, ia *interaction) bool {
	c, err := r.Cookie(op.browserCookieName())
	if err != nil {
		return false
	}
	d := digestOf(c.Value)
	return secretEqual(string(d[:]), string(ia.browser[:]))
}

// currentSession returns the live OP session of the request, if any.
func (op *OP) currentSession(r *http.Request) (*sessionRec, bool) {
	c, err := r.Cookie(op.sessionCookieName())
	if err != nil || c.Value == "" {
		return nil, false
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	s := op.st.sessions[digestOf(c.Value)]
	if s == nil || op.now().After(s.expires) {
		return nil, false
	}
	if _, ok := op.userBySubject(s.subject); !ok {
		return nil, false
	}
	cp := *s
	return &cp, true
}

// newInteraction stores ia under a fresh id and returns the id.
func (op *OP) newInteraction(ia *interaction) string {
	id := randomValue()
	op.mu.Lock()
	defer op.mu.Unlock()
	now := op.now()
	op.sweepLocked(now)
	ia.expires = now.Add(defaultInteractionTTL)
	op.st.interactions[digestOf(id)] = ia
	return id
}

// interactionByID returns the live interaction of the given kind.
func (op *OP) interactionByID(id string, kind interactionKind) *interaction {
	if id == "" {
		return nil
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	ia := op.st.interactions[digestOf(id)]
	if ia == nil || ia.kind != kind || op.now().After(ia.expires) {
		return nil
	}
	return ia
}

// takeInteraction deletes the interaction and reports whether it was
// still there (so two concurrent submissions cannot both complete it).
func (op *OP) takeInteraction(id string) bool {
	op.mu.Lock()
	defer op.mu.Unlock()
	k := digestOf(id)
	_, ok := op.st.interactions[k]
	delete(op.st.interactions, k)
	return ok
}

func (op *OP) dropInteraction(id string) {
	op.mu.Lock()
	defer op.mu.Unlock()
	delete(op.st.interactions, digestOf(id))
}

// handleAuthorize serves the authorization endpoint (OIDC Core §3.1.2).
func (op *OP) handleAuthorize(w http.ResponseWriter, r *http.Request, _ string) {
	if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	var params url.Values
	if r.Method == http.MethodGet {
		params = r.URL.Query()
	} else {
		if err := r.ParseForm(); err != nil {
			renderMessage(w, http.StatusBadRequest, "Invalid request", "The authorization request could not be read.")
			return
		}
		params = r.PostForm
	}
	// Until client_id and redirect_uri are known to be good, errors are
	// shown on a page: the OP never redirects to an unregistered URI.
	if len(params["client_id"]) != 1 || len(params["redirect_uri"]) != 1 {
		renderMessage(w, http.StatusBadRequest, "Invalid request", "The request must have exactly one client_id and one redirect_uri.")
		return
	}
	c := op.clientByID(params.Get("client_id"))
	if c == nil {
		renderMessage(w, http.StatusBadRequest, "Unknown client", "The application that sent you here is not registered.")
		return
	}
	redirectURI := params.Get("redirect_uri")
	if !slices.Contains(c.meta.RedirectURIs, redirectURI) {
		renderMessage(w, http.StatusBadRequest, "Invalid redirect URI", "The redirect_uri is not registered for this application.")
		return
	}
	state := params.Get("state")
	fail := func(code, desc string) {
		op.redirectError(w, r, redirectURI, state, code, desc)
	}
	if e := noRepeats(params); e != nil {
		fail("invalid_request", e.Description)
		return
	}
	if len(state) > maxParamLen || len(params.Get("nonce")) > maxParamLen {
		fail("invalid_request", "state or nonce too long")
		return
	}
	if params.Get("response_type") != "code" {
		fail("unsupported_response_type", "only response_type=code is supported")
		return
	}
	if !c.hasGrant(grantAuthorizationCode) {
		fail("unauthorized_client", "the client may not use the authorization_code grant")
		return
	}
	if params.Has("request") {
		fail("request_not_supported", "request objects are not supported")
		return
	}
	if params.Has("request_uri") {
		fail("request_uri_not_supported", "request_uri is not supported")
		return
	}
	if rm := params.Get("response_mode"); rm != "" && rm != "query" {
		fail("invalid_request", "only response_mode=query is supported")
		return
	}
	scopes := intersect(splitScope(params.Get("scope")), c.scopes)
	if len(scopes) == 0 {
		fail("invalid_scope", "none of the requested scopes is allowed for this client")
		return
	}
	challenge := params.Get("code_challenge")
	method := params.Get("code_challenge_method")
	switch {
	case challenge == "" && method != "":
		fail("invalid_request", "code_challenge_method without code_challenge")
		return
	case challenge == "" && (c.public() || op.cfg.RequirePKCE):
		fail("invalid_request", "PKCE (code_challenge with S256) is required")
		return
	case challenge != "" && method != "S256":
		fail("invalid_request", "code_challenge_method must be S256")
		return
	case challenge != "" && !validChallenge(challenge):
		fail("invalid_request", "malformed code_challenge")
		return
	}
	prompts := strings.Fields(params.Get("prompt"))
	for _, p := range prompts {
		if p != "none" && p != "login" && p != "consent" && p != "select_account" {
			fail("invalid_request", "unsupported prompt value")
			return
		}
	}
	promptNone := slices.Contains(prompts, "none")
	if promptNone && len(prompts) > 1 {
		fail("invalid_request", "prompt=none cannot be combined with other values")
		return
	}
	maxAge := -1
	if v := params.Get("max_age"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fail("invalid_request", "max_age must be a non-negative integer")
			return
		}
		maxAge = n
	}
	req := authRequest{
		clientID:    c.id,
		redirectURI: redirectURI,
		scopes:      scopes,
		state:       state,
		nonce:       params.Get("nonce"),
		challenge:   challenge,
		forceLogin:  slices.Contains(prompts, "login"),
		maxAge:      maxAge,
	}
	sess, ok := op.currentSession(r)
	if ok && maxAge >= 0 && op.now().Sub(sess.authTime) > time.Duration(maxAge)*time.Second {
		ok = false
	}
	if promptNone {
		if !ok {
			fail("login_required", "the user is not signed in")
			return
		}
		op.issueCode(w, r, req, sess)
		return
	}
	if ok && !req.forceLogin {
		op.issueCode(w, r, req, sess)
		return
	}
	binding := op.browserBinding(w, r)
	id := op.newInteraction(&interaction{kind: iaLogin, browser: binding, auth: req})
	renderPage(w, http.StatusOK, "login", pageData{
		Users: op.demoUsers(),
		Title: "Sign in", Client: c.meta.ClientName, Action: op.url(pathLogin), Interaction: id,
	})
}

// validChallenge checks the RFC 7636 §4.2 shape of an S256 challenge.
func validChallenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// redirectError sends an error response to a registered redirect URI
// (RFC 6749 §4.1.2.1, RFC 9207 iss).
func (op *OP) redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state, code, desc string) {
	q := url.Values{"error": {code}, "error_description": {desc}}
	if !op.cfg.DisableAuthorizationResponseIss {
		q.Set("iss", op.issuer) // RFC 9207
	}
	if state != "" {
		q.Set("state", state)
	}
	http.Redirect(w, r, appendQuery(redirectURI, q), redirectStatus(r))
}

func redirectStatus(r *http.Request) int {
	if r.Method == http.MethodPost {
		return http.StatusSeeOther
	}
	return http.StatusFound
}

// issueCode creates an authorization code for the session's user and
// redirects to the client.
func (op *OP) issueCode(w http.ResponseWriter, r *http.Request, req authRequest, sess *sessionRec) {
	code := randomValue()
	op.mu.Lock()
	now := op.now()
	op.sweepLocked(now)
	op.st.codes[digestOf(code)] = &codeRec{
		clientID:    req.clientID,
		redirectURI: req.redirectURI,
		subject:     sess.subject,
		scopes:      req.scopes,
		nonce:       req.nonce,
		challenge:   req.challenge,
		authTime:    sess.authTime,
		expires:     now.Add(op.cfg.CodeTTL),
		grantID:     randomID(),
		sid:         sess.sid,
	}
	if sess.clients != nil {
		sess.clients[req.clientID] = true // shared with the stored session
	}
	op.mu.Unlock()
	q := url.Values{"code": {code}}
	if !op.cfg.DisableAuthorizationResponseIss {
		q.Set("iss", op.issuer) // RFC 9207
	}
	if req.state != "" {
		q.Set("state", req.state)
	}
	http.Redirect(w, r, appendQuery(req.redirectURI, q), redirectStatus(r))
}

// handleLogin receives the login form (POST /login).
func (op *OP) handleLogin(w http.ResponseWriter, r *http.Request, _ string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		renderMessage(w, http.StatusMethodNotAllowed, "Sign in", "Start signing in from the application.")
		return
	}
	if err := r.ParseForm(); err != nil {
		renderMessage(w, http.StatusBadRequest, "Invalid request", "The form could not be read.")
		return
	}
	id := r.PostForm.Get("interaction")
	ia := op.interactionByID(id, iaLogin)
	if ia == nil {
		renderMessage(w, http.StatusBadRequest, "Sign-in expired", "This sign-in attempt has expired or was already used. Go back to the application and try again.")
		return
	}
	if !op.browserMatches(r, ia) {
		renderMessage(w, http.StatusForbidden, "Invalid request", "This sign-in form was not opened in this browser.")
		return
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	u, known := op.userByName(username)
	// Compare even for unknown users, so timing does not reveal them.
	good := secretEqual(password, u.Password) && known && u.Password != ""
	c := op.clientByID(ia.auth.clientID)
	if c == nil {
		op.dropInteraction(id)
		renderMessage(w, http.StatusBadRequest, "Unknown client", "The application is no longer registered.")
		return
	}
	if !good {
		op.mu.Lock()
		ia.attempts++
		tooMany := ia.attempts >= maxLoginAttempts
		op.mu.Unlock()
		if tooMany {
			op.dropInteraction(id)
			renderMessage(w, http.StatusForbidden, "Too many attempts", "Too many failed sign-in attempts. Go back to the application and try again.")
			return
		}
		renderPage(w, http.StatusOK, "login", pageData{
			Users: op.demoUsers(),
			Title: "Sign in", Client: c.meta.ClientName, Action: op.url(pathLogin), Interaction: id,
			Error: "Invalid username or password.", Username: username,
		})
		return
	}
	if !op.takeInteraction(id) {
		renderMessage(w, http.StatusBadRequest, "Sign-in expired", "This sign-in attempt was already used.")
		return
	}
	sess := op.startSession(w, r, u.Subject)
	op.issueCode(w, r, ia.auth, sess)
}

// startSession replaces any OP session of the browser with a fresh one
// (a new id: no session fixation) for subject.
func (op *OP) startSession(w http.ResponseWriter, r *http.Request, subject string) *sessionRec {
	id := randomValue()
	op.mu.Lock()
	now := op.now()
	if c, err := r.Cookie(op.sessionCookieName()); err == nil {
		delete(op.st.sessions, digestOf(c.Value))
	}
	s := &sessionRec{subject: subject, authTime: now, expires: now.Add(defaultSessionTTL), sid: randomID(), clients: map[string]bool{}}
	op.st.sessions[digestOf(id)] = s
	op.mu.Unlock()
	op.setCookie(w, op.sessionCookieName(), id, 0)
	cp := *s
	return &cp
}

// endSession deletes the browser's OP session and its cookie, sends
// back-channel logout to every client of the session that registered a
// backchannel_logout_uri, and returns the front-channel logout URLs (with
// iss and sid) of those that registered a frontchannel_logout_uri.
func (op *OP) endSession(w http.ResponseWriter, r *http.Request) (front []string) {
	var ended *sessionRec
	if c, err := r.Cookie(op.sessionCookieName()); err == nil {
		op.mu.Lock()
		if s, ok := op.st.sessions[digestOf(c.Value)]; ok {
			cp := *s
			cp.clients = maps.Clone(s.clients)
			ended = &cp
		}
		delete(op.st.sessions, digestOf(c.Value))
		op.mu.Unlock()
	}
	op.setCookie(w, op.sessionCookieName(), "", -1)
	if ended == nil {
		return nil
	}
	return op.notifyLogout(r.Context(), ended)
}

// handleEndSession serves RP-initiated logout (OIDC RP-Initiated Logout
// 1.0). With a valid id_token_hint the session ends at once; without one
// the user confirms with a button (a form bound to the browser). The
// browser is sent to post_logout_redirect_uri (with state) only when that
// URI is registered for the client named by the hint or by client_id;
// otherwise a "signed out" page is shown.
func (op *OP) handleEndSession(w http.ResponseWriter, r *http.Request, _ string) {
	if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	if err := r.ParseForm(); err != nil {
		renderMessage(w, http.StatusBadRequest, "Invalid request", "The logout request could not be read.")
		return
	}
	if r.Method == http.MethodPost && r.PostForm.Has("xsrf") {
		id := r.PostForm.Get("xsrf")
		ia := op.interactionByID(id, iaLogout)
		if ia == nil || !op.browserMatches(r, ia) {
			renderMessage(w, http.StatusBadRequest, "Sign-out expired", "This sign-out request has expired or was not opened in this browser.")
			return
		}
		if !op.takeInteraction(id) {
			renderMessage(w, http.StatusBadRequest, "Sign-out expired", "This sign-out request was already used.")
			return
		}
		front := op.endSession(w, r)
		op.finishLogout(w, r, ia.logoutRedirect, ia.logoutState, front)
		return
	}
	params := r.Form
	if e := noRepeats(params); e != nil {
		renderMessage(w, http.StatusBadRequest, "Invalid request", e.Description)
		return
	}
	hintValid := false
	clientID := params.Get("client_id")
	if hint := params.Get("id_token_hint"); hint != "" {
		if claims, err := op.verifyOwnJWT(hint); err == nil {
			aud := audienceOf(claims)
			if clientID == "" || clientID == aud {
				clientID, hintValid = aud, true
			}
		}
	}
	redirect := ""
	if p := params.Get("post_logout_redirect_uri"); p != "" && clientID != "" {
		if c := op.clientByID(clientID); c != nil && slices.Contains(c.meta.PostLogoutRedirectURIs, p) {
			redirect = p
		}
	}
	state := params.Get("state")
	if len(state) > maxParamLen {
		state = ""
	}
	if hintValid {
		front := op.endSession(w, r)
		op.finishLogout(w, r, redirect, state, front)
		return
	}
	binding := op.browserBinding(w, r)
	id := op.newInteraction(&interaction{kind: iaLogout, browser: binding, logoutRedirect: redirect, logoutState: state})
	renderPage(w, http.StatusOK, "logout", pageData{Title: "Sign out", Action: op.url(pathEndSession), Interaction: id})
}

// finishLogout ends an RP-initiated logout: with front-channel logout URLs
// a "signed out" page that loads each in an iframe and then continues to
// the post-logout redirect (if any); otherwise the redirect itself, or
// the page.
func (op *OP) finishLogout(w http.ResponseWriter, r *http.Request, redirect, state string, front []string) {
	next := ""
	if redirect != "" {
		q := url.Values{}
		if state != "" {
			q.Set("state", state)
		}
		next = appendQuery(redirect, q)
	}
	if len(front) > 0 {
		renderFrontChannel(w, front, next)
		return
	}
	if next == "" {
		renderMessage(w, http.StatusOK, "Signed out", "You are signed out of the development OP.")
		return
	}
	http.Redirect(w, r, next, redirectStatus(r))
}

// audienceOf returns the single audience of ID token claims ("" if none
// or several).
func audienceOf(claims map[string]any) string {
	switch a := claims["aud"].(type) {
	case string:
		return a
	case []any:
		if len(a) == 1 {
			s, _ := a[0].(string)
			return s
		}
	}
	return ""
}

// demoUsers are the accounts named on the login page: the DemoUsers when
// the OP runs with them (OPConfig.Users nil), none otherwise.
func (op *OP) demoUsers() []User {
	if op.cfg.Users != nil {
		return nil
	}
	return op.users
}
