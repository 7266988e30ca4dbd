package oxd

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/oxdgo/oxd/oxdclient"
)

// refreshGrace is how long the result of a refresh is remembered for the
// refresh token it replaced. A request of the same session that loaded the
// session before the refreshed tokens were saved still carries the old
// refresh token; it gets the remembered result instead of a second refresh
// (which an OP that rotates refresh tokens would refuse, logging the user
// out).
const refreshGrace = 30 * time.Second

// maxRecentRefreshes bounds the remembered results.
const maxRecentRefreshes = 4096

type refreshResult struct {
	access, refresh oxdclient.Secret
	expiry          time.Time // AccessTokenExpiry of the refreshed user
	refreshAt       time.Time
}

// refresher runs one refresh per refresh token at a time (single flight,
// keyed by a hash of the token, never the token) and remembers recent
// results.
type refresher struct {
	g singleflight.Group

	mu     sync.Mutex
	recent map[[sha256.Size]byte]recentRefresh
}

type recentRefresh struct {
	res   refreshResult
	until time.Time
}

func (f *refresher) init() { f.recent = make(map[[sha256.Size]byte]recentRefresh) }

func (f *refresher) lookup(key [sha256.Size]byte, now time.Time) (refreshResult, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.recent[key]
	if !ok || now.After(e.until) {
		return refreshResult{}, false
	}
	return e.res, true
}

func (f *refresher) remember(key [sha256.Size]byte, res refreshResult, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.recent) >= maxRecentRefreshes {
		for k, e := range f.recent {
			if now.After(e.until) {
				delete(f.recent, k)
			}
		}
		for k := range f.recent {
			if len(f.recent) < maxRecentRefreshes {
				break
			}
			delete(f.recent, k)
		}
	}
	f.recent[key] = recentRefresh{res: res, until: now.Add(refreshGrace)}
}

// errRefreshRefused marks an answer that ends the session.
var errRefreshRefused = errors.New("refresh refused")

// refreshLockMargin is added to Config.CallTimeout for the lifetime of a
// refresh lock: the holder's OP call is bounded by CallTimeout, and the
// lock outlives it by this margin to write the session.
const refreshLockMargin = 5 * time.Second

// refreshPoll is how often a replica waiting for another's refresh
// re-reads the session.
const refreshPoll = 25 * time.Millisecond

// refreshUser refreshes u's access token. It returns the new user (also
// stored in the session) and status 0 on success. On a refusal by oxd or
// the OP it destroys the session and returns status 0 with an error
// wrapping ErrRefreshFailed. On a transport failure it keeps the session:
// it returns u unchanged while the old access token is still valid, else a
// 503 error.
//
// One refresh per refresh token runs at a time: in this process (single
// flight) and across replicas (Config.RefreshLock). A request that did not
// refresh uses the tokens of the one that did.
func (a *Auth) refreshUser(r *http.Request, u *User) (nu *User, status int, err error) {
	ctx, sp := a.tel.start(r.Context(), spanRefresh)
	failedAtOxd := false
	defer func() { a.tel.refreshDone(ctx, sp, status, err, failedAtOxd) }()
	key := sha256.Sum256([]byte(u.refreshToken))
	res, ok := a.ref.lookup(key, a.now())
	if !ok {
		v, err, _ := a.ref.g.Do(string(key[:]), func() (any, error) {
			if res, ok := a.ref.lookup(key, a.now()); ok {
				return res, nil
			}
			// The flight serves every waiting request: it must not end
			// when the first one goes away.
			res, err := a.refreshShared(context.WithoutCancel(ctx), u, key)
			if err != nil {
				return nil, err
			}
			a.ref.remember(key, res, a.now())
			return res, nil
		})
		if err != nil {
			failedAtOxd = true
			return a.refreshFailed(r, u, err)
		}
		res = v.(refreshResult)
	}
	nu = res.apply(u)
	a.sm.Put(ctx, sessionKeyUser, nu)
	a.log.LogAttrs(ctx, slog.LevelDebug, "oxd: access token refreshed", slog.String("subject", u.Subject))
	return nu, 0, nil
}

func (res refreshResult) apply(u *User) *User {
	nu := *u
	nu.accessToken = res.access
	nu.refreshToken = res.refresh
	nu.AccessTokenExpiry = res.expiry
	nu.refreshAt = res.refreshAt
	return &nu
}

// refreshShared refreshes u under the shared refresh lock, or waits for
// the replica that holds it and returns the tokens it stored. ctx carries
// the session of the request that leads this process's flight.
func (a *Auth) refreshShared(ctx context.Context, u *User, key [sha256.Size]byte) (refreshResult, error) {
	lockKey := hex.EncodeToString(key[:])
	holder := rand.Text()
	ttl := a.cfg.CallTimeout + refreshLockMargin
	deadline := time.Now().Add(ttl + a.cfg.CallTimeout)
	for {
		lctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
		ok, err := a.lock.TryLock(lctx, lockKey, holder, ttl)
		cancel()
		if err != nil {
			return refreshResult{}, fmt.Errorf("%w: refresh lock: %w", oxdclient.ErrUnavailable, err)
		}
		if ok {
			defer func() {
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.CallTimeout)
				defer cancel()
				if err := a.lock.Unlock(uctx, lockKey, holder); err != nil {
					a.log.LogAttrs(ctx, slog.LevelWarn, "oxd: refresh lock not released (it expires)", slog.String("error", err.Error()))
				}
			}()
			// Another replica may have refreshed just before the lock
			// was free.
			if res, ok := a.storedRefresh(ctx, u); ok {
				return res, nil
			}
			return a.refreshAtOP(ctx, u)
		}
		t := time.NewTimer(refreshPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return refreshResult{}, ctx.Err()
		case <-t.C:
		}
		if res, ok := a.storedRefresh(ctx, u); ok {
			return res, nil
		}
		if time.Now().After(deadline) {
			return refreshResult{}, fmt.Errorf("%w: another replica's refresh of this session did not finish", oxdclient.ErrTimeout)
		}
	}
}

// refreshAtOP runs the refresh and writes the new tokens to the session
// store before returning (so that a replica waiting on the lock finds
// them once it is released).
func (a *Auth) refreshAtOP(ctx context.Context, u *User) (refreshResult, error) {
	octx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
	defer cancel()
	resp, err := a.client.GetAccessTokenByRefreshToken(octx, oxdclient.GetAccessTokenByRefreshTokenParams{
		OxdID:        a.oxdID,
		RefreshToken: u.refreshToken,
	})
	if err != nil {
		var oe *oxdclient.Error
		if errors.As(err, &oe) {
			// Refused: a replica that did not share this lock may have
			// used the refresh token first and stored its result.
			if res, ok := a.storedRefresh(ctx, u); ok {
				return res, nil
			}
		}
		return refreshResult{}, err
	}
	if resp.AccessToken == "" {
		return refreshResult{}, fmt.Errorf("%w: answer without access token", errRefreshRefused)
	}
	nu := *u
	nu.accessToken = resp.AccessToken
	if resp.RefreshToken != "" {
		nu.refreshToken = resp.RefreshToken
	}
	nu.setExpiry(a.now(), resp.ExpiresIn, a.cfg.RefreshBefore)
	res := refreshResult{access: nu.accessToken, refresh: nu.refreshToken, expiry: nu.AccessTokenExpiry, refreshAt: nu.refreshAt}
	a.sm.Put(ctx, sessionKeyUser, &nu)
	if _, _, err := a.sm.Commit(ctx); err != nil {
		// The tokens are valid; other replicas will wait for the lock to
		// expire and refresh again.
		a.log.LogAttrs(ctx, slog.LevelWarn, "oxd: refreshed tokens not written to the session store", slog.String("error", err.Error()))
	}
	return res, nil
}

// storedRefresh re-reads the session from the store and returns its
// tokens when another replica has refreshed u (same subject, other
// refresh and access tokens).
func (a *Auth) storedRefresh(ctx context.Context, u *User) (refreshResult, bool) {
	token := a.sm.Token(ctx)
	if token == "" {
		return refreshResult{}, false
	}
	// A context without the request's loaded session: Load reads the store.
	lctx, cancel := context.WithTimeout(context.Background(), a.cfg.CallTimeout)
	defer cancel()
	sctx, err := a.sm.Load(lctx, token)
	if err != nil {
		return refreshResult{}, false
	}
	su, _ := a.sm.Get(sctx, sessionKeyUser).(*User)
	if su == nil || su.Subject != u.Subject || su.refreshToken == u.refreshToken || su.accessToken == u.accessToken {
		return refreshResult{}, false
	}
	return refreshResult{access: su.accessToken, refresh: su.refreshToken, expiry: su.AccessTokenExpiry, refreshAt: su.refreshAt}, true
}

func (a *Auth) refreshFailed(r *http.Request, u *User, err error) (*User, int, error) {
	ctx := r.Context()
	var oe *oxdclient.Error
	if errors.As(err, &oe) || errors.Is(err, errRefreshRefused) {
		a.log.LogAttrs(ctx, slog.LevelInfo, "oxd: refresh refused; ending the session",
			slog.String("subject", u.Subject), slog.String("error", err.Error()))
		if derr := a.sm.Destroy(ctx); derr != nil {
			return nil, http.StatusInternalServerError, fmt.Errorf("refresh: %w: %w", ErrSession, derr)
		}
		return nil, 0, fmt.Errorf("refresh: %w: %w", ErrRefreshFailed, err)
	}
	status, e := oxdFailure("refresh: get_access_token_by_refresh_token", err)
	if !u.AccessTokenExpiry.IsZero() && a.now().Before(u.AccessTokenExpiry) {
		a.log.LogAttrs(ctx, slog.LevelWarn, "oxd: refresh failed; the access token is still valid, keeping it",
			slog.String("error", e.Error()))
		return u, 0, nil
	}
	return nil, status, e
}
