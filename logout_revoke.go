package oxd

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
)

const (
	// revokeMaxInFlight bounds the background revocations running at
	// once; a logout beyond it skips revocation (logged) rather than
	// piling up goroutines when the OP or oxd is slow.
	revokeMaxInFlight = 64
	// revokeWarnEvery rate-limits the WARN line of a failed revocation;
	// the other failures in the interval are logged at DEBUG.
	revokeWarnEvery = time.Minute
)

// revoker runs the revocations of tokens at logout in the background.
// The zero value is ready to use.
type revoker struct {
	wg       sync.WaitGroup // the running revocations; tests wait on it
	inFlight atomic.Int32
	lastWarn atomic.Int64 // unix nanoseconds of the last WARN line
}

// tokenPair is the refresh and access token of one session.
type tokenPair struct{ refresh, access oxdclient.Secret }

// revokeTokens revokes refresh, then access (either may be empty) at the
// OP through oxd's revoke_token, in a goroutine detached from the request
// and bounded by Config.CallTimeout. It never blocks the caller. Tokens
// never reach the log: only the oxd error code or the transport failure
// does.
func (a *Auth) revokeTokens(ctx context.Context, refresh, access oxdclient.Secret) {
	a.revokeSessions(ctx, []tokenPair{{refresh, access}})
}

// revokeSessions revokes the tokens of several sessions (LogoutAllSessions)
// one session after the other in one goroutine, which takes one of the
// revokeMaxInFlight places; each session's revocations are bounded by
// Config.CallTimeout. It never blocks the caller.
func (a *Auth) revokeSessions(ctx context.Context, pairs []tokenPair) {
	pairs = slices.DeleteFunc(pairs, func(p tokenPair) bool { return p.refresh == "" && p.access == "" })
	if len(pairs) == 0 {
		return
	}
	rv := &a.revoker
	if rv.inFlight.Add(1) > revokeMaxInFlight {
		rv.inFlight.Add(-1)
		a.revokeFailed(ctx, "", errors.New("too many revocations in flight; skipped"))
		return
	}
	rv.wg.Add(1)
	dctx := context.WithoutCancel(ctx)
	go func() {
		defer rv.wg.Done()
		defer rv.inFlight.Add(-1)
		for _, p := range pairs {
			if !a.revokePair(dctx, p) {
				return
			}
		}
	}()
}

// revokePair revokes one session's refresh, then access token, within
// Config.CallTimeout. It returns false when revocation is not available at
// all (nothing more to try).
func (a *Auth) revokePair(dctx context.Context, p tokenPair) bool {
	octx, cancel := context.WithTimeout(dctx, a.cfg.CallTimeout)
	defer cancel()
	for _, t := range []struct {
		tok  oxdclient.Secret
		hint string
	}{{p.refresh, "refresh_token"}, {p.access, "access_token"}} {
		if t.tok == "" {
			continue
		}
		_, err := a.client.RevokeToken(octx, oxdclient.RevokeTokenParams{
			OxdID: a.oxdID, Token: t.tok, TokenTypeHint: t.hint,
		})
		if err == nil {
			a.log.LogAttrs(dctx, slog.LevelDebug, "oxd: logout: token revoked at the OP", slog.String("token_type", t.hint))
			continue
		}
		if unsupportedRevocation(err) {
			// The OP has no revocation_endpoint, or the oxd server
			// does not know revoke_token: nothing to retry.
			a.log.LogAttrs(dctx, slog.LevelDebug, "oxd: logout: token revocation not available", slog.String("error", err.Error()))
			return false
		}
		a.revokeFailed(dctx, t.hint, err)
		if octx.Err() != nil {
			return true
		}
	}
	return true
}

// revokeFailed logs a failed revocation at WARN at most once per
// revokeWarnEvery, at DEBUG otherwise.
func (a *Auth) revokeFailed(ctx context.Context, hint string, err error) {
	level := slog.LevelDebug
	now := time.Now().UnixNano()
	last := a.revoker.lastWarn.Load()
	if now-last >= int64(revokeWarnEvery) && a.revoker.lastWarn.CompareAndSwap(last, now) {
		level = slog.LevelWarn
	}
	a.log.LogAttrs(ctx, level, "oxd: logout: token revocation failed; the token stays valid at the OP until it expires",
		slog.String("token_type", hint), slog.String("error", err.Error()))
}

// unsupportedRevocation reports whether err says revocation cannot work
// at all: no revocation_endpoint at the OP (no_revocation_endpoint_at_op,
// or this module's engine's invalid_request naming revocation_endpoint),
// or an oxd server without the revoke_token extension
// (unsupported_operation).
func unsupportedRevocation(err error) bool {
	var oe *oxdclient.Error
	if !errors.As(err, &oe) {
		return false
	}
	switch oe.Code {
	case oxdclient.CodeUnsupportedOperation, oxdclient.CodeNoRevocationEndpoint:
		return true
	case oxdclient.CodeInvalidRequest:
		// This module's engine: "OP does not provide revocation_endpoint …".
		return strings.Contains(oe.Description, "revocation_endpoint")
	}
	return false
}
