package oxd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/alexedwards/scs/v2"
)

// endedGuard is the scs Store of a SessionManager whose Auth has a
// SessionIndex (New installs it). It closes a race of logout with
// requests in flight: scs writes a session back to the store after the
// handler, so a request that loaded a session before a back-channel
// logout (or LogoutHandler, LogoutAllSessions, an eviction) deleted it
// would otherwise write it back afterwards and bring it to life again.
// Every session ended by the middleware is first marked in the index
// (MarkEnded) and then deleted; after every write the guard asks the
// index (Ended) and deletes the session again when it was marked. Either
// the write comes after the delete, and then after the mark, so the guard
// sees the mark; or it comes before the delete, which removes it.
//
// When the index cannot be asked after a write, the session is deleted
// and the write fails (fail closed): scs then answers the request with its
// ErrorFunc (500 by default), and the browser signs in again.
//
// Reads and deletes go to the wrapped store unchanged (no index call on the
// read path).
type endedGuard struct {
	inner scs.Store
	idx   SessionIndex
	log   *slog.Logger
}

// guardStore wraps sm.Store with an endedGuard over idx (once: a store
// already guarded by idx is left as it is).
func guardStore(sm *scs.SessionManager, idx SessionIndex, log *slog.Logger) {
	if g, ok := sm.Store.(*endedGuard); ok && g.idx == idx {
		return
	}
	sm.Store = &endedGuard{inner: sm.Store, idx: idx, log: log}
}

// unguarded returns the store under an endedGuard, or s.
func unguarded(s scs.Store) scs.Store {
	if g, ok := s.(*endedGuard); ok {
		return g.inner
	}
	return s
}

// Unwrap returns the store the guard wraps.
func (g *endedGuard) Unwrap() scs.Store { return g.inner }

func (g *endedGuard) Find(token string) ([]byte, bool, error) { return g.inner.Find(token) }

func (g *endedGuard) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	if s, ok := g.inner.(scs.CtxStore); ok {
		return s.FindCtx(ctx, token)
	}
	return g.inner.Find(token)
}

func (g *endedGuard) Delete(token string) error { return g.inner.Delete(token) }

func (g *endedGuard) DeleteCtx(ctx context.Context, token string) error {
	if s, ok := g.inner.(scs.CtxStore); ok {
		return s.DeleteCtx(ctx, token)
	}
	return g.inner.Delete(token)
}

func (g *endedGuard) Commit(token string, b []byte, expiry time.Time) error {
	return g.CommitCtx(context.Background(), token, b, expiry)
}

func (g *endedGuard) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	var err error
	if s, ok := g.inner.(scs.CtxStore); ok {
		err = s.CommitCtx(ctx, token, b, expiry)
	} else {
		err = g.inner.Commit(token, b, expiry)
	}
	if err != nil {
		return err
	}
	ended, err := g.idx.Ended(ctx, token)
	if err != nil && ctx.Err() != nil {
		// The request went away, but the session is written: the check
		// must still be made (and without allocating on the usual path).
		ended, err = g.idx.Ended(context.WithoutCancel(ctx), token)
	}
	if err == nil && !ended {
		return nil
	}
	cctx := context.WithoutCancel(ctx)
	derr := g.DeleteCtx(cctx, token)
	if err != nil {
		g.log.LogAttrs(ctx, slog.LevelError, "oxd: session index unavailable after a session write; the session is ended",
			slog.String("error", err.Error()))
		return errors.Join(fmt.Errorf("oxd: session index: %w", err), derr)
	}
	g.log.LogAttrs(ctx, slog.LevelInfo, "oxd: a request in flight wrote back a session ended by logout; deleted again")
	if derr != nil {
		return fmt.Errorf("oxd: deleting a session ended by logout: %w", derr)
	}
	return nil
}

// errNotIterable: the wrapped store cannot list its sessions.
var errNotIterable = errors.New("oxd: the session store does not support iteration")

func (g *endedGuard) All() (map[string][]byte, error) {
	return g.AllCtx(context.Background())
}

func (g *endedGuard) AllCtx(ctx context.Context) (map[string][]byte, error) {
	if s, ok := g.inner.(scs.IterableCtxStore); ok {
		return s.AllCtx(ctx)
	}
	if s, ok := g.inner.(scs.IterableStore); ok {
		return s.All()
	}
	return nil, errNotIterable
}

// endStoreKey ends a session by its store key: marked ended in the index
// (until the latest time it could have lived), then deleted from the scs
// Store, so that the next request with that cookie, on any replica sharing
// the store, is anonymous, and a request in flight cannot write it back.
// A failed mark is reported but the session is deleted all the same.
func (a *Auth) endStoreKey(ctx context.Context, key string) error {
	var merr error
	if err := a.idx.MarkEnded(ctx, key, time.Now().Add(a.sessionLifetime())); err != nil {
		merr = fmt.Errorf("mark ended: %w", err)
	}
	return errors.Join(merr, a.destroyStoreKey(ctx, key))
}
