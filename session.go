package oxd

import (
	"context"
	"crypto/subtle"
	"encoding/gob"
	"fmt"
	"log/slog"
	"slices"
	"time"

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
	// The ID token: idToken as text, or, for a user loaded from a session
	// (encoding version 3), idTokenJWS, its decoded segments, joined back
	// into the text only when the token is used (idTokenText): most
	// requests never use it. At most one of the two is set.
	idToken    oxdclient.Secret
	idTokenJWS *jwsParts
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
