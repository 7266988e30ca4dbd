// Package redisstore is the Redis [oxdserver.Store]: several engines
// (application replicas, drop-in servers) share sites, login states and
// nonces. It is a package of its own so that an application using the
// memory or file store does not link (or require) go-redis.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd/oxdserver"
)

// Store keeps sites, states and nonces in Redis, so that several
// engines (application replicas) share them: a login started on one
// replica can finish on another. One-time values use Redis expiry and are
// taken with GETDEL (Redis 6.2 or later), atomically across replicas.
//
// The client is a go-redis UniversalClient: a single node, Sentinel or a
// Cluster. Keys (all under the prefix): "site:<oxd_id>" (the site as
// JSON), "sites" (a set of oxd_ids), "{v}v:<key>" (one-time values).
// Sites hold client secrets and registration access tokens in plain form:
// restrict access to the Redis database (ACLs, TLS, private network).
//
// Pending values are bounded as in every store
// (oxdserver.DefaultMaxValues, oxdserver.DefaultMaxValuesPerGroup, or
// MaxValues and MaxValuesPerGroup when set): each is indexed in sorted sets
// by expiry ("{v}vidx" and "{v}vidx:<group>"), and the earliest to expire
// (the oldest, for one kind of value) is evicted, by one script over the
// value and both indexes. On a Cluster these keys share the hash tag
// "{v}", so they live in one slot (one primary holds the pending values:
// at most DefaultMaxValues of about 500 bytes, some 50 MB); the prefix
// should contain no braces, which would change the tag.
type Store struct {
	// MaxValues and MaxValuesPerGroup bound the pending one-time values
	// (see oxdserver.MemoryStore); set them before first use.
	MaxValues, MaxValuesPerGroup int

	c      redis.UniversalClient
	prefix string
}

// New returns a store using client (a *redis.Client, a
// *redis.ClusterClient, a failover client…), with every key under prefix
// (for example "oxd:"). Close does not close the client: its owner does.
func New(client redis.UniversalClient, prefix string) *Store {
	return &Store{c: client, prefix: prefix}
}

func (r *Store) siteKey(id string) string { return r.prefix + "site:" + id }
func (r *Store) indexKey() string         { return r.prefix + "sites" }

// The keys of one-time values and their indexes share the hash tag {v}:
// the eviction script touches all three (and evicted values) at once.
func (r *Store) valueBase() string            { return r.prefix + "{v}v:" }
func (r *Store) valueKey(k string) string     { return r.valueBase() + k }
func (r *Store) valueIndex() string           { return r.prefix + "{v}vidx" }
func (r *Store) groupIndex(key string) string { return r.prefix + "{v}vidx:" + valueGroup(key) }

// GetSite implements oxdserver.Store.
func (r *Store) GetSite(ctx context.Context, oxdID string) (*oxdserver.Site, error) {
	b, err := r.c.Get(ctx, r.siteKey(oxdID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, oxdserver.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("oxdserver: redis get site: %w", err)
	}
	var s oxdserver.Site
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("oxdserver: stored site is corrupt: %w", err)
	}
	return &s, nil
}

// PutSite implements oxdserver.Store.
func (r *Store) PutSite(ctx context.Context, site *oxdserver.Site) error {
	if site == nil || site.OxdID == "" {
		return errors.New("oxdserver: site without oxd_id")
	}
	b, err := json.Marshal(site)
	if err != nil {
		return err
	}
	// The site key and the index are in different slots on a Cluster: no
	// transaction. The index first: ListSites skips an indexed id without
	// a site.
	_, err = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, r.indexKey(), site.OxdID)
		p.Set(ctx, r.siteKey(site.OxdID), b, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("oxdserver: redis put site: %w", err)
	}
	return nil
}

// DeleteSite implements oxdserver.Store.
func (r *Store) DeleteSite(ctx context.Context, oxdID string) error {
	var del *redis.IntCmd
	_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		del = p.Del(ctx, r.siteKey(oxdID))
		p.SRem(ctx, r.indexKey(), oxdID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("oxdserver: redis delete site: %w", err)
	}
	if del.Val() == 0 {
		return oxdserver.ErrNotFound
	}
	return nil
}

// ListSites implements oxdserver.Store.
func (r *Store) ListSites(ctx context.Context) ([]*oxdserver.Site, error) {
	ids, err := r.c.SMembers(ctx, r.indexKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("oxdserver: redis list sites: %w", err)
	}
	slices.Sort(ids)
	out := make([]*oxdserver.Site, 0, len(ids))
	const batch = 256
	for start := 0; start < len(ids); start += batch {
		chunk := ids[start:min(start+batch, len(ids))]
		// GETs in a pipeline, not MGET: on a Cluster the sites are in
		// different slots (the pipeline is split by node).
		gets := make([]*redis.StringCmd, len(chunk))
		_, err := r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range chunk {
				gets[i] = p.Get(ctx, r.siteKey(id))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("oxdserver: redis list sites: %w", err)
		}
		for _, g := range gets {
			s, err := g.Result()
			if errors.Is(err, redis.Nil) {
				continue // deleted between SMEMBERS and GET
			}
			if err != nil {
				return nil, fmt.Errorf("oxdserver: redis list sites: %w", err)
			}
			var site oxdserver.Site
			if err := json.Unmarshal([]byte(s), &site); err != nil {
				return nil, fmt.Errorf("oxdserver: stored site is corrupt: %w", err)
			}
			out = append(out, &site)
		}
	}
	return out, nil
}

// PutValue implements oxdserver.Store.
func (r *Store) PutValue(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return errors.New("oxdserver: value without a time to live")
	}
	now := time.Now().UnixMilli()
	exp := now + ttl.Milliseconds()
	keys := []string{r.valueKey(key), r.valueIndex(), r.groupIndex(key)}
	args := []any{value, ttl.Milliseconds(), exp, now, r.valueBase(),
		limitOr(r.MaxValues, oxdserver.DefaultMaxValues), limitOr(r.MaxValuesPerGroup, oxdserver.DefaultMaxValuesPerGroup), key}
	if err := redisPutValue.Run(ctx, r.c, keys, args...).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("oxdserver: redis put value: %w", err)
	}
	return nil
}

// redisPutValue stores the value, indexes it by expiry in the store's and
// its group's sorted sets, drops expired index entries, and evicts the
// earliest-expiring values over the bounds. KEYS: value key, store index,
// group index. ARGV: value, ttl ms, expiry ms, now ms, value key prefix,
// max values, max per group, member (the key without prefix).
var redisPutValue = redis.NewScript(`
local member = ARGV[8]
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[4])
local function evict(idx, max)
  while redis.call('ZCARD', idx) >= max do
    local m = redis.call('ZPOPMIN', idx)
    if #m == 0 then break end
    redis.call('DEL', ARGV[5] .. m[1])
    redis.call('ZREM', KEYS[2], m[1])
  end
end
redis.call('ZREM', KEYS[2], member)
redis.call('ZREM', KEYS[3], member)
evict(KEYS[3], tonumber(ARGV[7]))
evict(KEYS[2], tonumber(ARGV[6]))
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], member)
redis.call('ZADD', KEYS[3], ARGV[3], member)
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 1
`)

// TakeValue implements oxdserver.Store with GETDEL.
func (r *Store) TakeValue(ctx context.Context, key string) ([]byte, error) {
	b, err := r.c.GetDel(ctx, r.valueKey(key)).Bytes()
	if err == nil || errors.Is(err, redis.Nil) {
		// Unindex (best effort: stale index entries are dropped when
		// evicted or expired).
		r.c.ZRem(ctx, r.valueIndex(), key)
		r.c.ZRem(ctx, r.groupIndex(key), key)
	}
	if errors.Is(err, redis.Nil) {
		return nil, oxdserver.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("oxdserver: redis take value: %w", err)
	}
	return b, nil
}

// Close implements oxdserver.Store. It does not close the Redis client.
func (r *Store) Close() error { return nil }

// valueGroup is the group of a one-time value's key: its kind and site,
// the key up to its first '/' (as oxdserver groups them).
func valueGroup(key string) string {
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i]
	}
	return ""
}

func limitOr(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

var _ oxdserver.Store = (*Store)(nil)

// CountSites implements oxdserver.StoreCounter (SCARD of the site index).
func (r *Store) CountSites(ctx context.Context) (int64, error) {
	n, err := r.c.SCard(ctx, r.indexKey()).Result()
	if err != nil {
		return 0, fmt.Errorf("oxdserver: redis count sites: %w", err)
	}
	return n, nil
}

// CountValues implements oxdserver.StoreCounter: the pending values not yet
// expired, from the expiry index (ZCOUNT).
func (r *Store) CountValues(ctx context.Context) (int64, error) {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	n, err := r.c.ZCount(ctx, r.valueIndex(), "("+now, "+inf").Result()
	if err != nil {
		return 0, fmt.Errorf("oxdserver: redis count values: %w", err)
	}
	return n, nil
}

var _ oxdserver.StoreCounter = (*Store)(nil)
