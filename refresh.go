package oxd

import (
	"context"
	"crypto/sha256"
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
	expiresIn       int64
	issued          time.Time
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

// refreshUser refreshes u's access token. It returns the new user (also
// stored in the session) and status 0 on success. On a refusal by oxd or
// the OP it destroys the session and returns status 0 with an error
// wrapping ErrRefreshFailed. On a transport failure it keeps the session:
// it returns u unchanged while the old access token is still valid, else a
// 503 error.
func (a *Auth) refreshUser(r *http.Request, u *User) (*User, int, error) {
	ctx := r.Context()
	key := sha256.Sum256([]byte(u.refreshToken))
	res, ok := a.ref.lookup(key, a.now())
	if !ok {
		v, err, _ := a.ref.g.Do(string(key[:]), func() (any, error) {
			if res, ok := a.ref.lookup(key, a.now()); ok {
				return res, nil
			}
			// The flight serves every waiting request: it must not end
			// when the first one goes away.
			octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.CallTimeout)
			defer cancel()
			resp, err := a.client.GetAccessTokenByRefreshToken(octx, oxdclient.GetAccessTokenByRefreshTokenParams{
				OxdID:        a.oxdID,
				RefreshToken: u.refreshToken,
			})
			if err != nil {
				return nil, err
			}
			if resp.AccessToken == "" {
				return nil, fmt.Errorf("%w: answer without access token", errRefreshRefused)
			}
			res := refreshResult{access: resp.AccessToken, refresh: resp.RefreshToken, expiresIn: resp.ExpiresIn, issued: a.now()}
			a.ref.remember(key, res, res.issued)
			return res, nil
		})
		if err != nil {
			return a.refreshFailed(r, u, err)
		}
		res = v.(refreshResult)
	}
	nu := *u
	nu.accessToken = res.access
	if res.refresh != "" {
		nu.refreshToken = res.refresh
	}
	nu.setExpiry(res.issued, res.expiresIn, a.cfg.RefreshBefore)
	a.sm.Put(ctx, sessionKeyUser, &nu)
	a.log.LogAttrs(ctx, slog.LevelDebug, "oxd: access token refreshed", slog.String("subject", u.Subject))
	return &nu, 0, nil
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
