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
	"sync"
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
// JSON), "sites" (a set of oxd_ids), "{v}v:<key>" (one-time values, with
// Redis expiry), "{v}vidx:<group>" (a group's values by expiry),
// "{v}vgroups" (the groups by size) and "{v}vtotal" (their total).
// Sites hold client secrets and registration access tokens in plain form:
// restrict access to the Redis database (ACLs, TLS, private network).
//
// Pending values are bounded as in every store
// (oxdserver.DefaultMaxValues, oxdserver.DefaultMaxValuesPerGroup, or
// MaxValues and MaxValuesPerGroup when set), with the same eviction: a
// group's earliest-expiring value over its bound, the earliest of the
// largest group over the store's, by one script over the value and the
// indexes; TakeValue is one script too. On a Cluster these keys share the
// hash tag "{v}", so they live in one slot (one primary holds the pending
// values: about 450 bytes per pending login, at most some 45 MB at the
// default bounds); the prefix should contain no braces, which would change
// the tag.
type Store struct {
	// MaxValues and MaxValuesPerGroup bound the pending one-time values
	// (see oxdserver.MemoryStore); set them before first use.
	MaxValues, MaxValuesPerGroup int

	c      redis.UniversalClient
	prefix string

	// decoded keeps the last decoded form of each site with the exact
	// bytes it was decoded from: GetSite still reads Redis every time
	// (another engine may have changed the site) and skips only the JSON
	// decoding when the bytes are the same. At most maxDecodedSites.
	mu      sync.Mutex
	decoded map[string]decodedSite
}

// decodedSite is a site as stored (raw) and decoded.
type decodedSite struct {
	raw  string
	site *oxdserver.Site
}

// maxDecodedSites bounds Store.decoded; past it the map starts over.
const maxDecodedSites = 1024

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
func (r *Store) valueBase() string        { return r.prefix + "{v}v:" }
func (r *Store) valueKey(k string) string { return r.valueBase() + k }
func (r *Store) groupIndexBase() string   { return r.prefix + "{v}vidx:" }
func (r *Store) groupsKey() string        { return r.prefix + "{v}vgroups" }
func (r *Store) totalKey() string         { return r.prefix + "{v}vtotal" }

// GetSite implements oxdserver.Store.
func (r *Store) GetSite(ctx context.Context, oxdID string) (*oxdserver.Site, error) {
	b, err := r.c.Get(ctx, r.siteKey(oxdID)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, oxdserver.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("oxdserver: redis get site: %w", err)
	}
	r.mu.Lock()
	d, ok := r.decoded[oxdID]
	r.mu.Unlock()
	if ok && d.raw == string(b) {
		return d.site.Clone(), nil
	}
	var s oxdserver.Site
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("oxdserver: stored site is corrupt: %w", err)
	}
	if s.OxdID == oxdID {
		r.mu.Lock()
		if r.decoded == nil || len(r.decoded) >= maxDecodedSites {
			r.decoded = make(map[string]decodedSite)
		}
		r.decoded[oxdID] = decodedSite{raw: string(b), site: s.Clone()}
		r.mu.Unlock()
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
	r.mu.Lock()
	delete(r.decoded, oxdID) // its secrets leave memory with it
	r.mu.Unlock()
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
	keys, args := r.scriptArgs(key)
	keys = append(keys, r.prefix+"{v}vidx") // the index of all values of earlier versions, dropped
	args = append(args, value, ttl.Milliseconds(), now+ttl.Milliseconds(), now,
		limitOr(r.MaxValues, oxdserver.DefaultMaxValues), limitOr(r.MaxValuesPerGroup, oxdserver.DefaultMaxValuesPerGroup))
	if err := redisPutValue.Run(ctx, r.c, keys, args...).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("oxdserver: redis put value: %w", err)
	}
	return nil
}

// TakeValue implements oxdserver.Store: the value is read, deleted and
// unindexed by one script, atomic across replicas.
func (r *Store) TakeValue(ctx context.Context, key string) ([]byte, error) {
	keys, args := r.scriptArgs(key)
	b, err := redisTakeValue.Run(ctx, r.c, keys, args...).Text()
	if errors.Is(err, redis.Nil) {
		return nil, oxdserver.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("oxdserver: redis take value: %w", err)
	}
	return []byte(b), nil
}

// scriptArgs are the keys and first arguments of both scripts for the
// one-time value key: KEYS value key, groups, total, group index; ARGV
// value key prefix, group index prefix, group, member. A key's group is
// its part before the first '/' and its member in the group's index the
// part after it; a key without '/' is a member of its own in the group
// "/" (which no key before a '/' can be).
func (r *Store) scriptArgs(key string) (keys []string, args []any) {
	group, member := "/", key
	if i := strings.IndexByte(key, '/'); i >= 0 {
		group, member = key[:i], key[i+1:]
	}
	return []string{r.valueKey(key), r.groupsKey(), r.totalKey(), r.groupIndexBase() + group},
		[]any{r.valueBase(), r.groupIndexBase(), group, member}
}

// luaIndex is the bookkeeping both scripts share. KEYS[2] holds the groups
// (member: a group, score: how many entries its index holds), KEYS[3] the
// total of those counts; a group's index is ARGV[2] .. group (member: the
// key after the group's '/', score: expiry ms); a value's key is ARGV[1] ..
// its key.
const luaIndex = `
local function keyOf(g, m) if g == '/' then return m end return g .. '/' .. m end
local function count(g)
  local n = redis.call('ZCARD', ARGV[2] .. g)
  local old = tonumber(redis.call('ZSCORE', KEYS[2], g) or 0)
  if n == 0 then redis.call('ZREM', KEYS[2], g) else redis.call('ZADD', KEYS[2], n, g) end
  if n ~= old and redis.call('INCRBY', KEYS[3], n - old) <= 0 then redis.call('DEL', KEYS[3]) end
end
local function evictFirst(g)
  local first = redis.call('ZPOPMIN', ARGV[2] .. g)
  if #first == 0 then return false end
  redis.call('DEL', ARGV[1] .. keyOf(g, first[1]))
  return true
end
`

// redisPutValue stores the value (with Redis expiry) and indexes it by
// expiry in its group's sorted set, after dropping the group's expired
// entries and evicting over the bounds: the group's earliest-expiring
// values over its bound, then, over the store's bound, the
// earliest-expiring value of the largest group (of equally large groups,
// the one whose earliest value expires first), as the memory store does.
// A group's expired entries are dropped when the group is written or
// considered for eviction; until then they count towards the bounds, so
// the bounds hold whatever the clock does. KEYS[5] is the index of all
// values that earlier versions kept (without expiry), removed. ARGV after
// scriptArgs': value, ttl ms, expiry ms, now ms, max values, max per group.
var redisPutValue = redis.NewScript(luaIndex + `
local g, m, now = ARGV[3], ARGV[4], ARGV[8]
local maxAll, maxGroup = tonumber(ARGV[9]), tonumber(ARGV[10])
redis.call('UNLINK', KEYS[5])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
redis.call('ZREM', KEYS[4], m)
while redis.call('ZCARD', KEYS[4]) >= maxGroup do
  if not evictFirst(g) then break end
end
count(g)
local guard = 0
while tonumber(redis.call('GET', KEYS[3]) or 0) >= maxAll and guard < 1000 do
  guard = guard + 1
  local top = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if #top == 0 then
    redis.call('DEL', KEYS[3])
    break
  end
  local best, victim
  for _, vg in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], top[2], top[2], 'LIMIT', 0, 256)) do
    redis.call('ZREMRANGEBYSCORE', ARGV[2] .. vg, '-inf', now)
    local first = redis.call('ZRANGE', ARGV[2] .. vg, 0, 0, 'WITHSCORES')
    if #first > 0 and (best == nil or tonumber(first[2]) < best) then best, victim = tonumber(first[2]), vg end
    count(vg)
  end
  if victim ~= nil then
    evictFirst(victim)
    count(victim)
  end
end
redis.call('SET', KEYS[1], ARGV[5], 'PX', ARGV[6])
redis.call('ZADD', KEYS[4], ARGV[7], m)
count(g)
return 1
`)

// redisTakeValue returns and deletes the value (nil when missing or
// expired) and unindexes it.
var redisTakeValue = redis.NewScript(luaIndex + `
local v = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[4], ARGV[4])
count(ARGV[3])
return v
`)

// Close implements oxdserver.Store. It does not close the Redis client.
func (r *Store) Close() error {
	r.mu.Lock()
	r.decoded = nil
	r.mu.Unlock()
	return nil
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
// expired, counted in each group's expiry index by one script. With more
// than maxCountedGroups groups it answers the stored total instead, which
// may include expired values until their group is next written.
func (r *Store) CountValues(ctx context.Context) (int64, error) {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	n, err := redisCountValues.Run(ctx, r.c, []string{r.groupsKey(), r.totalKey()},
		r.groupIndexBase(), now, maxCountedGroups).Int64()
	if err != nil {
		return 0, fmt.Errorf("oxdserver: redis count values: %w", err)
	}
	return n, nil
}

// maxCountedGroups bounds the groups CountValues counts one by one (a
// group is one kind of value of one site).
const maxCountedGroups = 1024

// redisCountValues: KEYS groups, total; ARGV group index prefix, now ms,
// most groups to count.
var redisCountValues = redis.NewScript(`
local max = tonumber(ARGV[3])
local groups = redis.call('ZRANGE', KEYS[1], 0, max)
if #groups > max then return tonumber(redis.call('GET', KEYS[2]) or 0) end
local n = 0
for _, g in ipairs(groups) do
  n = n + redis.call('ZCOUNT', ARGV[1] .. g, '(' .. ARGV[2], '+inf')
end
return n
`)

var _ oxdserver.StoreCounter = (*Store)(nil)
