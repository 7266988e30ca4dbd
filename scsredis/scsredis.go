// Package scsredis is an scs session store (github.com/alexedwards/scs/v2)
// on a go-redis [redis.UniversalClient]: one Redis server, a Redis Cluster,
// Sentinel-managed failover or a Ring all serve it, where scs's own
// goredisstore takes only a *redis.Client.
//
// A session is one Redis string: the key is the prefix (default
// [DefaultPrefix]) followed by the session token, the value is the bytes scs
// encoded, and the key expires with the session (SET … PX, the milliseconds
// left until the session's deadline, rounded up). Redis drops expired
// sessions itself: no cleanup goroutine. Every operation on one session is a
// single single-key command, so keys need no hash tag and sessions spread over
// all the slots of a Cluster.
//
// The store implements scs.Store, scs.CtxStore, scs.IterableStore and
// scs.IterableCtxStore. scs calls the context variants with the request's
// context. A context that has already ended fails the call at once; a
// context that ends while Redis is slow to answer ends the call only when the
// client was made with ContextTimeoutEnabled (a go-redis option, off by
// default): without it go-redis waits up to its ReadTimeout (5 s by default)
// whatever the context says. Set it, and short read and write timeouts, in
// the client of a web application (see the Example).
//
// Errors wrap the go-redis error (errors.Is works with context.Canceled,
// context.DeadlineExceeded and the network errors) and never contain a
// session token. A Redis that cannot be reached is an error, never "not
// found": scs then calls its ErrorFunc (500 by default) instead of starting
// the user over with an empty session.
//
// The Redis deployment holds session tokens and session data: keep it on a
// private network, with AUTH (and TLS where the network is not trusted), as
// the go-redis options allow.
package scsredis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the key prefix of New, the same as scs's redisstore and
// goredisstore use.
const DefaultPrefix = "scs:session:"

// scanCount is the COUNT hint of each SCAN step of All.
const scanCount = 1000

// Store is an scs session store on a go-redis UniversalClient. It is safe for
// concurrent use; many replicas of an application may share one Redis
// deployment through their own Stores with the same prefix.
type Store struct {
	client redis.UniversalClient
	prefix string
}

var (
	_ scs.Store            = (*Store)(nil)
	_ scs.CtxStore         = (*Store)(nil)
	_ scs.IterableStore    = (*Store)(nil)
	_ scs.IterableCtxStore = (*Store)(nil)
)

// New returns a Store on client with keys under [DefaultPrefix]. It panics
// when client is nil.
func New(client redis.UniversalClient) *Store {
	return NewWithPrefix(client, DefaultPrefix)
}

// NewWithPrefix returns a Store on client with keys under prefix, which
// separates several applications (or session managers) on one Redis. It
// panics when client is nil or prefix is empty: All would then take every key
// of the database for a session.
func NewWithPrefix(client redis.UniversalClient, prefix string) *Store {
	if client == nil {
		panic("scsredis: nil redis client")
	}
	if prefix == "" {
		panic("scsredis: empty key prefix")
	}
	return &Store{client: client, prefix: prefix}
}

// Prefix is the key prefix of the store's sessions.
func (s *Store) Prefix() string { return s.prefix }

// FindCtx returns the data of the session token. A token that is unknown,
// expired, deleted or malformed is not found (found false, err nil); err is
// for Redis or context errors only.
func (s *Store) FindCtx(ctx context.Context, token string) (b []byte, found bool, err error) {
	b, err = s.client.Get(ctx, s.prefix+token).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("scsredis: find session: %w", err)
	}
	return b, true, nil
}

// CommitCtx stores b as the data of the session token until expiry,
// replacing any data and expiry it had. An expiry that has passed (or is
// less than a millisecond away) deletes the session instead.
func (s *Store) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	ttl := time.Until(expiry)
	if ttl <= 0 {
		if err := s.client.Del(ctx, s.prefix+token).Err(); err != nil {
			return fmt.Errorf("scsredis: commit expired session: %w", err)
		}
		return nil
	}
	// Rounded up: a session never ends before its deadline in Redis.
	ms := int64((ttl + time.Millisecond - 1) / time.Millisecond)
	cmd := redis.NewStatusCmd(ctx, "set", s.prefix+token, b, "px", ms)
	if err := s.client.Process(ctx, cmd); err != nil {
		return fmt.Errorf("scsredis: commit session: %w", err)
	}
	return nil
}

// DeleteCtx removes the session token; deleting an unknown token is not an
// error.
func (s *Store) DeleteCtx(ctx context.Context, token string) error {
	if err := s.client.Del(ctx, s.prefix+token).Err(); err != nil {
		return fmt.Errorf("scsredis: delete session: %w", err)
	}
	return nil
}

// AllCtx returns the data of every session that has not expired, by token;
// an empty (not nil) map when there is none.
//
// Cost: it walks the whole keyspace of every primary with SCAN (COUNT 1000
// per step, MATCH on the prefix; a Cluster's primaries are walked
// concurrently, a Ring's shards too), fetches the sessions found with one
// pipeline of GETs per step, and holds all of them in memory. Its time grows
// with the number of keys in the database, not only with the sessions: it is
// for administration (scs's Iterate), not for a request path. SCAN
// guarantees every session that exists for the whole walk is returned once;
// a session created, deleted or moved between Cluster nodes during the walk
// may be missed. A session that expires during the walk is left out.
func (s *Store) AllCtx(ctx context.Context) (map[string][]byte, error) {
	all := make(map[string][]byte)
	var mu sync.Mutex
	walk := func(ctx context.Context, c *redis.Client) error {
		return s.scanNode(ctx, c, func(token string, b []byte) {
			mu.Lock()
			all[token] = b
			mu.Unlock()
		})
	}
	var err error
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, walk)
	case *redis.Ring:
		err = c.ForEachShard(ctx, walk)
	case *redis.Client:
		err = walk(ctx, c)
	default:
		err = fmt.Errorf("scsredis: All: unsupported client type %T", s.client)
	}
	if err != nil {
		return nil, fmt.Errorf("scsredis: list sessions: %w", err)
	}
	return all, nil
}

// scanNode walks the keys under the prefix on one node and calls found for
// every one that still exists when it is read.
func (s *Store) scanNode(ctx context.Context, c *redis.Client, found func(token string, b []byte)) error {
	match := escapeGlob(s.prefix) + "*"
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, match, scanCount).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			pipe := c.Pipeline()
			cmds := make([]*redis.StringCmd, len(keys))
			for i, k := range keys {
				cmds[i] = pipe.Get(ctx, k)
			}
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			for i, k := range keys {
				b, err := cmds[i].Bytes()
				if errors.Is(err, redis.Nil) {
					continue // expired or deleted since SCAN saw it
				}
				if err != nil {
					return err
				}
				found(strings.TrimPrefix(k, s.prefix), b)
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// escapeGlob escapes the characters that are special in a Redis MATCH
// pattern, so the prefix matches only itself.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Find is FindCtx with context.Background().
func (s *Store) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// Commit is CommitCtx with context.Background().
func (s *Store) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// Delete is DeleteCtx with context.Background().
func (s *Store) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// All is AllCtx with context.Background(); see AllCtx for its cost.
func (s *Store) All() (map[string][]byte, error) {
	return s.AllCtx(context.Background())
}
