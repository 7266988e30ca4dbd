package oxd

import (
	"context"
	"sync"
	"time"
)

// RefreshLock makes the refresh of one session single-flight across
// replicas. With refresh-token rotation (most certified OPs rotate) a
// refresh token can be used once: if two replicas refreshed one session at
// once, the second would get invalid_grant and throw the user out.
//
// Before refreshing, a replica takes the lock named by a hash of the
// refresh token (never the token); the holder refreshes, writes the new
// tokens to the session store, then releases. A replica that finds the
// lock taken waits, re-reading the session from the store, and uses the
// tokens the holder wrote. A lock lives at most ttl (Config.CallTimeout
// plus a margin), so a replica that dies mid-refresh delays the others by
// at most that long.
//
// The default (Config.RefreshLock nil) is an in-process lock: enough for
// one replica. Several replicas must share one, e.g. redislock.New on the
// Redis that holds the sessions. Implementations must be safe for
// concurrent use.
type RefreshLock interface {
	// TryLock takes the lock key for ttl, for the holder token, unless
	// another holder has it: ok reports whether it was taken.
	TryLock(ctx context.Context, key, token string, ttl time.Duration) (ok bool, err error)
	// Unlock releases key if token still holds it (a lock that expired and
	// was taken by another holder stays taken).
	Unlock(ctx context.Context, key, token string) error
}

// memoryLock is the in-process RefreshLock.
type memoryLock struct {
	mu    sync.Mutex
	held  map[string]memoryLockEntry
	puts  int
	nowFn func() time.Time
}

type memoryLockEntry struct {
	token string
	until time.Time
}

func newMemoryLock() *memoryLock {
	return &memoryLock{held: map[string]memoryLockEntry{}, nowFn: time.Now}
}

func (m *memoryLock) TryLock(_ context.Context, key, token string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.nowFn()
	if m.puts++; m.puts >= 1024 {
		m.puts = 0
		for k, e := range m.held {
			if !now.Before(e.until) {
				delete(m.held, k)
			}
		}
	}
	if e, ok := m.held[key]; ok && now.Before(e.until) {
		return false, nil
	}
	m.held[key] = memoryLockEntry{token: token, until: now.Add(ttl)}
	return true, nil
}

func (m *memoryLock) Unlock(_ context.Context, key, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.held[key]; ok && e.token == token {
		delete(m.held, key)
	}
	return nil
}
