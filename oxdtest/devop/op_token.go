package devop

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"time"
)

// handleToken serves the token endpoint (RFC 6749 §3.2) for the
// authorization_code, refresh_token, client_credentials and uma-ticket
// grants. Clients authenticate with their registered method (see
// authenticateClient); public clients send only client_id.
func (op *OP) handleToken(w http.ResponseWriter, r *http.Request, _ string) {
	form, oe := readForm(r)
	if oe != nil {
		writeErr(w, oe)
		return
	}
	c, oe := op.authenticateClient(r, form, pathToken)
	if oe != nil {
		writeErr(w, oe)
		return
	}
	switch gt := form.Get("grant_type"); gt {
	case grantAuthorizationCode:
		op.grantCode(w, c, form)
	case grantRefreshToken:
		op.grantRefresh(w, c, form)
	case grantClientCredentials:
		op.grantClientCredentials(w, c, form)
	case GrantTypeUMATicket:
		op.grantUMATicket(w, c, form)
	case "":
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "unsupported grant_type")
	}
}

// tokenGrant describes the tokens to issue for a user grant.
type tokenGrant struct {
	client   *clientRec
	subject  string
	scopes   []string // access token scopes
	rtScopes []string // refresh token scopes (the original grant)
	authTime time.Time
	grantID  string
	nonce    string
	refresh  bool
	sid      string
}

// issueLocked creates the access (and refresh) token records; op.mu is
// held. The ID token is signed afterwards by finishTokens.
func (op *OP) issueLocked(g tokenGrant, now time.Time) (access, refresh string) {
	access = op.newTokenLocked(&tokenRec{
		kind: kindAccess, clientID: g.client.id, subject: g.subject, scopes: g.scopes,
		authTime: g.authTime, issued: now, expires: now.Add(op.cfg.AccessTokenTTL), grantID: g.grantID,
	})
	if g.refresh {
		rts := g.rtScopes
		if rts == nil {
			rts = g.scopes
		}
		refresh = op.newTokenLocked(&tokenRec{
			kind: kindRefresh, clientID: g.client.id, subject: g.subject, scopes: rts,
			authTime: g.authTime, issued: now, expires: now.Add(op.cfg.RefreshTokenTTL), grantID: g.grantID,
			sid: g.sid,
		})
	}
	return access, refresh
}

// finishTokens builds the token response, signing an ID token when the
// scope includes openid.
func (op *OP) finishTokens(w http.ResponseWriter, g tokenGrant, now time.Time, access, refresh string) {
	resp := map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   int64(op.cfg.AccessTokenTTL / time.Second),
		"scope":        joinScope(g.scopes),
	}
	if refresh != "" {
		resp["refresh_token"] = refresh
	}
	if hasScope(g.scopes, "openid") {
		u, _ := op.userBySubject(g.subject)
		claims := op.scopeClaims(u, g.scopes)
		claims["iss"] = op.issuer
		claims["sub"] = g.subject
		claims["aud"] = g.client.id
		claims["iat"] = now.Unix()
		claims["exp"] = now.Add(op.cfg.IDTokenTTL).Unix()
		claims["auth_time"] = g.authTime.Unix()
		claims["at_hash"] = atHash(access)
		if g.nonce != "" {
			claims["nonce"] = g.nonce
		}
		if g.sid != "" {
			claims["sid"] = g.sid
		}
		idt, err := op.sign(claims)
		if err != nil {
			writeOAuthError(w, http.StatusInternalServerError, "server_error", "could not sign the ID token")
			return
		}
		resp["id_token"] = idt
	}
	writeJSON(w, http.StatusOK, resp)
}

// grantCode redeems an authorization code (RFC 6749 §4.1.3, RFC 7636 §4.6).
// A code works once; presenting it again revokes every token issued from
// it (RFC 6749 §4.1.2).
func (op *OP) grantCode(w http.ResponseWriter, c *clientRec, form url.Values) {
	code := form.Get("code")
	if code == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "code is required")
		return
	}
	if !c.hasGrant(grantAuthorizationCode) {
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", "the client may not use this grant")
		return
	}
	verifier := form.Get("code_verifier")
	op.mu.Lock()
	now := op.now()
	rec := op.st.codes[digestOf(code)]
	var oe *oauthError
	switch {
	case rec == nil || now.After(rec.expires):
		oe = oauthErr(http.StatusBadRequest, "invalid_grant", "invalid or expired code")
	case rec.clientID != c.id:
		oe = oauthErr(http.StatusBadRequest, "invalid_grant", "code was issued to another client")
	case rec.used:
		op.revokeGrantLocked(rec.grantID)
		oe = oauthErr(http.StatusBadRequest, "invalid_grant", "code already used; tokens issued from it are revoked")
	case form.Get("redirect_uri") != rec.redirectURI:
		oe = oauthErr(http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request")
	case rec.challenge == "" && verifier != "":
		oe = oauthErr(http.StatusBadRequest, "invalid_grant", "code_verifier sent but no code_challenge was")
	case rec.challenge != "" && !pkceMatches(verifier, rec.challenge):
		rec.used = true // burn the code: no guessing of verifiers
		oe = oauthErr(http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
	}
	if oe != nil {
		op.mu.Unlock()
		writeErr(w, oe)
		return
	}
	rec.used = true
	// Keep the used code long enough to detect replays of it.
	rec.expires = now.Add(max(op.cfg.RefreshTokenTTL, op.cfg.AccessTokenTTL))
	g := tokenGrant{
		client: c, subject: rec.subject, scopes: rec.scopes, authTime: rec.authTime,
		grantID: rec.grantID, nonce: rec.nonce, refresh: c.hasGrant(grantRefreshToken), sid: rec.sid,
	}
	access, refresh := op.issueLocked(g, now)
	op.mu.Unlock()
	op.finishTokens(w, g, now, access, refresh)
}

// pkceMatches checks an RFC 7636 code_verifier against an S256 challenge.
func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for _, r := range verifier {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' || r == '~') {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	return secretEqual(base64.RawURLEncoding.EncodeToString(sum[:]), challenge)
}

// grantRefresh redeems a refresh token (RFC 6749 §6). Refresh tokens
// rotate: each use returns a new one, and presenting a used one again
// revokes the whole grant (reuse detection).
func (op *OP) grantRefresh(w http.ResponseWriter, c *clientRec, form url.Values) {
	rt := form.Get("refresh_token")
	if rt == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "refresh_token is required")
		return
	}
	if !c.hasGrant(grantRefreshToken) {
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", "the client may not use this grant")
		return
	}
	op.mu.Lock()
	now := op.now()
	rec := op.tokenLocked(rt, now)
	var oe *oauthError
	var scopes []string
	switch {
	case rec == nil || rec.kind != kindRefresh || rec.clientID != c.id:
		oe = oauthErr(http.StatusBadRequest, "invalid_grant", "invalid or expired refresh token")
	case rec.used:
		op.revokeGrantLocked(rec.grantID)
		oe = oauthErr(http.StatusBadRequest, "invalid_grant", "refresh token already used; the grant is revoked")
	default:
		scopes = rec.scopes
		if s := form.Get("scope"); s != "" {
			req := splitScope(s)
			scopes = intersect(req, rec.scopes)
			if len(scopes) != len(intersect(req, req)) {
				oe = oauthErr(http.StatusBadRequest, "invalid_scope", "scope exceeds the original grant")
			}
		}
		if _, ok := op.userBySubject(rec.subject); !ok && oe == nil {
			oe = oauthErr(http.StatusBadRequest, "invalid_grant", "the user no longer exists")
		}
	}
	if oe != nil {
		op.mu.Unlock()
		writeErr(w, oe)
		return
	}
	rec.used = true
	g := tokenGrant{
		client: c, subject: rec.subject, scopes: scopes, rtScopes: rec.scopes,
		authTime: rec.authTime, grantID: rec.grantID, refresh: true,
		// The refreshed ID token names the OP session of the login (OIDC
		// Core §12.2: same iss, sub, auth_time; Back-Channel Logout §2.1:
		// the sid the RP indexed its session by).
		sid: rec.sid,
	}
	access, refresh := op.issueLocked(g, now)
	op.mu.Unlock()
	op.finishTokens(w, g, now, access, refresh)
}

// grantClientCredentials issues a token to the client itself (RFC 6749
// §4.4). The granted scope is the requested scope intersected with the
// client's registered scope; this is how protection tokens (scope "oxd")
// and PATs (scope "uma_protection") are obtained.
func (op *OP) grantClientCredentials(w http.ResponseWriter, c *clientRec, form url.Values) {
	if c.public() || !c.hasGrant(grantClientCredentials) {
		writeOAuthError(w, http.StatusBadRequest, "unauthorized_client", "the client may not use this grant")
		return
	}
	requested := splitScope(form.Get("scope"))
	granted := intersect(requested, c.scopes)
	if len(requested) > 0 && len(granted) == 0 {
		writeOAuthError(w, http.StatusBadRequest, "invalid_scope", "none of the requested scopes is allowed for this client")
		return
	}
	op.mu.Lock()
	now := op.now()
	access := op.newTokenLocked(&tokenRec{
		kind: kindAccess, clientID: c.id, scopes: granted,
		issued: now, expires: now.Add(op.cfg.AccessTokenTTL),
	})
	op.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   int64(op.cfg.AccessTokenTTL / time.Second),
		"scope":        joinScope(granted),
	})
}

var profileClaims = []string{
	"name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
	"profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
}

// scopeClaims returns the user's claims released by the scopes
// (OIDC Core §5.4): profile and email. "sub" is added by the caller.
func (op *OP) scopeClaims(u User, scopes []string) map[string]any {
	out := map[string]any{}
	if hasScope(scopes, "profile") {
		for _, k := range profileClaims {
			if v, ok := u.Claims[k]; ok {
				out[k] = v
			}
		}
		if _, ok := out["preferred_username"]; !ok && u.Username != "" {
			out["preferred_username"] = u.Username
		}
	}
	if hasScope(scopes, "email") {
		for _, k := range []string{"email", "email_verified"} {
			if v, ok := u.Claims[k]; ok {
				out[k] = v
			}
		}
	}
	return out
}

// handleUserinfo serves the UserInfo endpoint (OIDC Core §5.3).
func (op *OP) handleUserinfo(w http.ResponseWriter, r *http.Request, _ string) {
	if !allowMethods(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	tok, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="oxdtest"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "a Bearer access token is required")
		return
	}
	op.mu.Lock()
	rec := op.tokenLocked(tok, op.now())
	var cp tokenRec
	if rec != nil {
		cp = *rec
	}
	op.mu.Unlock()
	if rec == nil || cp.kind != kindAccess {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "invalid or expired access token")
		return
	}
	u, known := op.userBySubject(cp.subject)
	if cp.subject == "" || !known || !hasScope(cp.scopes, "openid") {
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="openid"`)
		writeOAuthError(w, http.StatusForbidden, "insufficient_scope", "the access token was not issued for openid")
		return
	}
	claims := op.scopeClaims(u, cp.scopes)
	claims["sub"] = u.Subject
	writeJSON(w, http.StatusOK, claims)
}

// handleIntrospect serves token introspection (RFC 7662, UMA FedAuthz §5).
// Callers authenticate as confidential clients (any method) or with a
// Bearer access token carrying scope uma_protection (a PAT) or oxd.
func (op *OP) handleIntrospect(w http.ResponseWriter, r *http.Request, _ string) {
	form, oe := readForm(r)
	if oe != nil {
		writeErr(w, oe)
		return
	}
	callerID := ""
	if pat, ok := bearerToken(r); ok {
		rec := op.accessTokenWithScope(pat, "uma_protection", "oxd")
		if rec == nil {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeOAuthError(w, http.StatusUnauthorized, "invalid_token", "invalid protection token")
			return
		}
		callerID = rec.clientID
	} else {
		c, oe := op.authenticateClient(r, form, pathIntrospection)
		if oe == nil && c.public() {
			oe = &oauthError{Status: http.StatusUnauthorized, Code: "invalid_client", Description: "public clients may not introspect"}
		}
		if oe != nil {
			writeErr(w, oe)
			return
		}
		callerID = c.id
	}
	token := form.Get("token")
	if token == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	}
	op.mu.Lock()
	rec := op.tokenLocked(token, op.now())
	var cp tokenRec
	if rec != nil {
		cp = *rec
		cp.perms = append([]permission(nil), rec.perms...)
	}
	op.mu.Unlock()
	inactive := map[string]any{"active": false}
	if rec == nil || cp.kind == kindPCT || (cp.kind == kindRefresh && (cp.used || cp.clientID != callerID)) {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	resp := map[string]any{
		"active":    true,
		"client_id": cp.clientID,
		"exp":       cp.expires.Unix(),
		"iat":       cp.issued.Unix(),
		"iss":       op.issuer,
		"aud":       cp.clientID,
	}
	switch cp.kind {
	case kindRPT:
		resp["token_type"] = "Bearer"
		perms := make([]permission, len(cp.perms))
		for i, p := range cp.perms {
			p.Scopes = nonNil(p.Scopes)
			perms[i] = p
		}
		resp["permissions"] = perms
	case kindAccess, kindRefresh:
		resp["token_type"] = "Bearer"
		if cp.kind == kindRefresh {
			resp["token_type"] = "refresh_token"
		}
		resp["scope"] = joinScope(cp.scopes)
		if cp.subject != "" {
			resp["sub"] = cp.subject
			if u, ok := op.userBySubject(cp.subject); ok {
				resp["username"] = u.Username
			}
		}
	}
	if cp.subject != "" {
		resp["sub"] = cp.subject
	}
	writeJSON(w, http.StatusOK, resp)
}

// accessTokenWithScope returns a copy of a live access token that has at
// least one of the scopes, or nil.
func (op *OP) accessTokenWithScope(token string, scopes ...string) *tokenRec {
	op.mu.Lock()
	defer op.mu.Unlock()
	rec := op.tokenLocked(token, op.now())
	if rec == nil || rec.kind != kindAccess {
		return nil
	}
	for _, s := range scopes {
		if hasScope(rec.scopes, s) {
			cp := *rec
			return &cp
		}
	}
	return nil
}

// handleRevoke serves token revocation (RFC 7009). Clients revoke only
// their own tokens; revoking a refresh token revokes its grant. The answer
// is 200 whether or not the token was known.
func (op *OP) handleRevoke(w http.ResponseWriter, r *http.Request, _ string) {
	form, oe := readForm(r)
	if oe != nil {
		writeErr(w, oe)
		return
	}
	c, oe := op.authenticateClient(r, form, pathRevocation)
	if oe != nil {
		writeErr(w, oe)
		return
	}
	token := form.Get("token")
	if token == "" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "token is required")
		return
	}
	op.mu.Lock()
	if rec := op.tokenLocked(token, op.now()); rec != nil && rec.clientID == c.id {
		delete(op.st.tokens, digestOf(token))
		if rec.kind == kindRefresh {
			op.revokeGrantLocked(rec.grantID)
		}
	}
	op.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}
