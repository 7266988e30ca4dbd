// Package redislock is an [oxd.RefreshLock] on Redis, shared by every
// replica of an application: a go-redis UniversalClient, so a single node,
// Sentinel or a Cluster.
//
// A lock is one key (prefix + the lock's name), taken with SET NX PX and
// released by a script that deletes it only while it still holds the
// holder's token: a holder whose lock expired cannot release another's.
package redislock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the key prefix when New gets "".
const DefaultPrefix = "oxd:refreshlock:"

// Lock implements oxd.RefreshLock.
type Lock struct {
	c      redis.UniversalClient
	prefix string
}

// New returns a lock on client with keys under prefix (DefaultPrefix when
// empty).
func New(client redis.UniversalClient, prefix string) *Lock {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return &Lock{c: client, prefix: prefix}
}

// TryLock implements oxd.RefreshLock with SET NX PX.
func (l *Lock) TryLock(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	if ttl < time.Millisecond {
		return false, errors.New("redislock: ttl under a millisecond")
	}
	err := l.c.SetArgs(ctx, l.prefix+key, token, redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("redislock: lock: %w", err)
	}
	return true, nil
}

var unlock = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Unlock implements oxd.RefreshLock: it deletes the key only while it
// holds token.
func (l *Lock) Unlock(ctx context.Context, key, token string) error {
	if err := unlock.Run(ctx, l.c, []string{l.prefix + key}, token).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redislock: unlock: %w", err)
	}
	return nil
}
