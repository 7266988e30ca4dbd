package oxd

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/oxdgo/oxd/internal/logouttoken"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/sessionindex"
)

// BackChannelLogoutHandler serves the back-channel logout URI (OpenID
// Connect Back-Channel Logout 1.0) registered at the OP: a POST with an
// application/x-www-form-urlencoded body holding a logout_token. A valid
// token ends every session of its OP session (sid), or with sub only every
// session of the subject, on every replica that shares Config.SessionIndex
// and the scs store: their store keys are deleted from the scs Store, so
// the next request with those cookies is anonymous.
//
// The token is validated per §2.6 against the site's OP: op_host and
// client_id are read once from oxd (get_rp); iss must equal the issuer
// exactly as the OP's discovery document at op_host states it; the OP's
// keys come from its discovery (key rotation handled); the jti is single
// use across replicas (the replay cache is the session index). Answers:
// 200 with Cache-Control: no-store on success, 400 with a JSON error for a
// bad token or a failed logout, 405, 413 (body over 64 KiB), 415, and 501
// when Config.SessionIndex is nil. Never a redirect. Every session ended
// is marked ended in the index before it is deleted, so a request of it in
// flight cannot write it back. The sessions' tokens are not revoked here:
// the OP ended its session and decides about its tokens (§2.7). Mount it
// outside RequireLogin and outside sessions.LoadAndSave (it carries no
// cookie):
//
//	mux.Handle("POST /logout/backchannel", auth.BackChannelLogoutHandler())
func (a *Auth) BackChannelLogoutHandler() http.Handler {
	return a.tel.wrap(spanBackChannel, a.tel.backChannelDone, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.idx == nil {
			logouttoken.BackChannelHandler(nil, nil, nil, a.log).ServeHTTP(w, r)
			return
		}
		ch, err := a.channels.get(r.Context(), a)
		if err != nil {
			a.log.LogAttrs(r.Context(), slog.LevelError, "oxd: back-channel logout not ready", slog.String("error", err.Error()))
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"server_error","error_description":"the logout could not be completed"}` + "\n"))
			return
		}
		ch.back.ServeHTTP(w, r)
	}))
}

// FrontChannelLogoutHandler serves the front-channel logout URI (OpenID
// Connect Front-Channel Logout 1.0) registered at the OP with
// frontchannel_logout_session_required: the OP loads it in an iframe with
// iss and sid, and every session of that OP session ends on every replica
// sharing Config.SessionIndex and the scs store. The answer is a tiny page
// only the OP's origin may frame (Content-Security-Policy frame-ancestors),
// with Cache-Control: no-store; without this OP's iss and a sid it is 400
// and nothing ends; 501 when Config.SessionIndex is nil. Mount it outside
// RequireLogin:
//
//	mux.Handle("GET /logout/frontchannel", auth.FrontChannelLogoutHandler())
func (a *Auth) FrontChannelLogoutHandler() http.Handler {
	return a.tel.wrap(spanFrontChannel, frontChannelDone, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.idx == nil {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "Logout is not configured", http.StatusNotImplemented)
			return
		}
		ch, err := a.channels.get(r.Context(), a)
		if err != nil {
			a.log.LogAttrs(r.Context(), slog.LevelError, "oxd: front-channel logout not ready", slog.String("error", err.Error()))
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "Logout failed", http.StatusInternalServerError)
			return
		}
		ch.front.ServeHTTP(w, r)
	}))
}

// logoutChannels are the two logout handlers, built on first use from the
// site's issuer and client_id (get_rp). A failed build is retried at most
// once per channelRetry.
type logoutChannels struct {
	mu        sync.Mutex
	back      http.Handler
	front     http.Handler
	lastTry   time.Time
	lastErr   error
	newValCfg func(*logouttoken.Config) // tests: adjust the validator
}

const channelRetry = 5 * time.Second

func (c *logoutChannels) get(ctx context.Context, a *Auth) (*logoutChannels, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.back != nil {
		return c, nil
	}
	now := a.now()
	if c.lastErr != nil && now.Sub(c.lastTry) < channelRetry {
		return nil, c.lastErr
	}
	c.lastTry = now
	// Detached from the request: a caller who goes away must not leave a
	// failure cached for the OP's requests that follow (get_rp is bounded
	// by CallTimeout, the discovery by its own timeout).
	ctx = context.WithoutCancel(ctx)
	site, err := a.siteIdentity(ctx)
	if err == nil {
		cfg := logouttoken.Config{ClientID: site.clientID, Replay: a.idx}
		if c.newValCfg != nil {
			c.newValCfg(&cfg)
		}
		// iss of logout tokens and front-channel requests must equal the
		// issuer exactly as the OP's discovery states it (the one oxd
		// checks ID tokens against, and so the iss of the index's
		// entries), not op_host, which may differ from it (a trailing
		// slash).
		var issuer string
		if issuer, err = logouttoken.DiscoverIssuer(ctx, cfg.HTTPClient, site.opHost, site.discoveryPath); err == nil {
			cfg.Issuer = issuer
			var v *logouttoken.Validator
			if v, err = logouttoken.New(cfg); err == nil {
				var front http.Handler
				if front, err = logouttoken.FrontChannelHandler(issuer, a.idx, a.endStoreKey, a.log); err == nil {
					c.back = logouttoken.BackChannelHandler(v, a.idx, a.endStoreKey, a.log)
					c.front = front
					c.lastErr = nil
					return c, nil
				}
			}
		}
	}
	c.lastErr = fmt.Errorf("oxd: logout handlers: %w", err)
	return nil, c.lastErr
}

// siteOP is what the logout handlers need of the site at oxd.
type siteOP struct {
	opHost, discoveryPath, clientID string
}

// siteIdentity reads the site's op_host, op_discovery_path and client_id
// from oxd with get_rp. The answer holds the client secret: it is decoded
// into these fields only and never logged.
func (a *Auth) siteIdentity(ctx context.Context) (siteOP, error) {
	octx, cancel := a.oxdCtx(ctx)
	defer cancel()
	resp, err := a.client.GetRP(octx, oxdclient.GetRPParams{OxdID: a.oxdID})
	if err != nil {
		_, e := oxdFailure("get_rp", err)
		return siteOP{}, e
	}
	var node struct {
		OPHost          string `json:"op_host"`
		OPDiscoveryPath string `json:"op_discovery_path"`
		ClientID        string `json:"client_id"`
	}
	if json.Unmarshal(resp.Node, &node) != nil || node.OPHost == "" || node.ClientID == "" {
		return siteOP{}, fmt.Errorf("get_rp: %w: the site has no op_host or client_id", ErrCommand)
	}
	return siteOP{opHost: node.OPHost, discoveryPath: node.OPDiscoveryPath, clientID: node.ClientID}, nil
}

// storeKey is the key the scs Store holds the session token under.
func (a *core) storeKey(token string) string {
	if token != "" && a.sm.HashTokenInStore {
		h := sha256.Sum256([]byte(token))
		return base64.RawURLEncoding.EncodeToString(h[:])
	}
	return token
}

// destroyStoreKey ends a session by deleting its store key from the scs
// Store: the next request with that cookie, on any replica sharing the
// store, is anonymous.
func (a *core) destroyStoreKey(ctx context.Context, key string) error {
	if s, ok := a.sm.Store.(interface {
		DeleteCtx(context.Context, string) error
	}); ok {
		return s.DeleteCtx(ctx, key)
	}
	return a.sm.Store.Delete(key)
}

// indexSession records the session just signed in (store key of the
// renewed token) in the session index and ends the sessions the index
// evicted to keep the subject within its cap. An error means the session
// must not live.
func (a *Auth) indexSession(ctx context.Context, u *User, expires time.Time) error {
	if a.idx == nil {
		return nil
	}
	e := sessionindex.Entry{
		Token:   a.storeKey(a.sm.Token(ctx)),
		Issuer:  u.IDTokenClaims.String("iss"),
		Subject: u.Subject,
		SID:     u.IDTokenClaims.String("sid"),
		Expires: expires,
	}
	evicted, err := a.idx.Add(ctx, e)
	if err != nil {
		return err
	}
	for _, k := range evicted {
		if k == e.Token {
			continue
		}
		if err := a.endStoreKey(ctx, k); err != nil {
			a.log.LogAttrs(ctx, slog.LevelError, "oxd: ending a session evicted from the session index failed", slog.String("error", err.Error()))
		}
	}
	return nil
}

// endOtherSessions ends every session of u's subject at u's issuer but the
// current one (storeKey), for Config.LogoutAllSessions. n is the number
// ended. The user asked to end them: unless Config.SkipTokenRevocation,
// the refresh and access tokens each of them holds in the scs store are
// revoked at the OP, as LogoutHandler does for the current session (in
// the background, never blocking the logout).
func (a *Auth) endOtherSessions(ctx context.Context, u *User, current string) (n int, err error) {
	keys, err := a.idx.BySubject(ctx, u.IDTokenClaims.String("iss"), u.Subject)
	if err != nil {
		return 0, fmt.Errorf("session index lookup: %w", err)
	}
	var errs []error
	var revoke []tokenPair
	for _, k := range keys {
		if k == current {
			continue
		}
		var toks tokenPair
		if !a.cfg.SkipTokenRevocation {
			toks = a.storedTokens(ctx, k, u)
		}
		if err := a.endStoreKey(ctx, k); err != nil {
			errs = append(errs, fmt.Errorf("end session: %w", err))
			continue
		}
		n++
		revoke = append(revoke, toks)
		if err := a.idx.Remove(ctx, k); err != nil {
			errs = append(errs, fmt.Errorf("session index remove: %w", err))
		}
	}
	a.revokeSessions(ctx, revoke)
	return n, errors.Join(errs...)
}

// storedTokens reads the session with store key key from the scs Store and
// returns its tokens when it is a session of u's subject and issuer (zero
// when it is gone or cannot be read: then nothing is revoked).
func (a *Auth) storedTokens(ctx context.Context, key string, u *User) tokenPair {
	var b []byte
	var found bool
	var err error
	if s, ok := a.sm.Store.(scs.CtxStore); ok {
		b, found, err = s.FindCtx(ctx, key)
	} else {
		b, found, err = a.sm.Store.Find(key)
	}
	if err != nil || !found {
		return tokenPair{}
	}
	_, values, err := a.sm.Codec.Decode(b)
	if err != nil {
		return tokenPair{}
	}
	su, _ := values[sessionKeyUser].(*User)
	if su == nil || su.Subject != u.Subject || su.IDTokenClaims.String("iss") != u.IDTokenClaims.String("iss") {
		return tokenPair{}
	}
	return tokenPair{refresh: su.refreshToken, access: su.accessToken}
}
