// Package redisindex is a session index in Redis (see oxd.SessionIndex),
// shared by every replica of an application: a back-channel logout that
// reaches any replica ends the sessions that were started on all of them.
// It works on a single Redis server and on a Redis Cluster.
//
// # Keys
//
// Every key starts with the prefix (Options.Prefix, default
// "oxd:sessionindex:"). The session keys carry the prefix as a hash tag,
// "{oxd:sessionindex:}…", so that they share one hash slot and every change
// is one atomic script, on a Redis Cluster as well; the index therefore lives
// on one shard (about 450 bytes per live session in its own OP
// session, measured with MEMORY USAGE). Replay marks are single
// keys without a hash tag and spread over the cluster.
//
//	{P}:t:<store key>        hash: the subject set and OP-session set of the session
//	{P}:s:<sha256(iss,sub)>  sorted set: the subject's store keys, scored by expiry (ms)
//	{P}:d:<sha256(iss,sid)>  sorted set: the OP session's store keys, scored by expiry
//	P j:<sha256(iss,jti)>    string: a logout token's jti, SET NX PX
//	P x:<sha256(store key)>  string: an ended session (MarkEnded), SET PXAT
//
// # Bounds
//
// Every key expires with the last session it holds (PEXPIREAT), so an
// abandoned index empties itself. A subject has at most MaxPerSubject live
// sessions: an Add beyond it evicts, in the same script, the subject's
// session that expires first (never the one being added), with its keys, and
// returns its store key for the caller to end. One subject therefore holds at
// most 2×MaxPerSubject+1 keys whatever the number of logins. An ended
// session leaves one mark key until it would have expired (MarkEnded).
//
// Store keys (scs tokens, or their hashes with HashTokenInStore) are held as
// they are in the session store; protect the index as the session store
// (ACLs, TLS, private network).
package redisindex

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd/sessionindex"
)

// DefaultPrefix is the default key prefix.
const DefaultPrefix = "oxd:sessionindex:"

// Options configures [New]. The zero value gives the defaults.
type Options struct {
	// Prefix starts every key; it must not contain '{' or '}' (it is used
	// as the hash tag). Default DefaultPrefix.
	Prefix string
	// MaxPerSubject is the most live sessions one subject may have; an Add
	// beyond it evicts the subject's session that expires first. Default
	// sessionindex.DefaultMaxPerSubject.
	MaxPerSubject int
}

// Index is a session index in Redis. Safe for concurrent use; several
// Index values (replicas) with the same client target and prefix share one
// index.
type Index struct {
	c       redis.UniversalClient
	max     int
	tag     string // "{prefix}"
	prefix  string
	tPrefix string
}

// ErrBadPrefix: Options.Prefix contains a brace.
var ErrBadPrefix = errors.New("redisindex: prefix must not contain '{' or '}'")

// New returns an index over client, a *redis.Client (one server, or a
// failover client) or a *redis.ClusterClient; Redis 6.2 or later (tested
// with 7.0, single server and cluster). The client's owner closes it.
func New(client redis.UniversalClient, opts Options) (*Index, error) {
	if client == nil {
		return nil, errors.New("redisindex: nil client")
	}
	p := opts.Prefix
	if p == "" {
		p = DefaultPrefix
	}
	if strings.ContainsAny(p, "{}") {
		return nil, ErrBadPrefix
	}
	m := opts.MaxPerSubject
	if m <= 0 {
		m = sessionindex.DefaultMaxPerSubject
	}
	tag := "{" + p + "}"
	return &Index{c: client, max: m, tag: tag, prefix: p, tPrefix: tag + ":t:"}, nil
}

func digest(issuer, value string) string {
	sum := sha256.Sum256([]byte(sessionindex.PairKey(issuer, value)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (x *Index) tokenKey(storeKey string) string { return x.tPrefix + storeKey }
func (x *Index) subjectKey(iss, sub string) string {
	return x.tag + ":s:" + digest(iss, sub)
}
func (x *Index) sidKey(iss, sid string) string { return x.tag + ":d:" + digest(iss, sid) }
func (x *Index) jtiKey(iss, jti string) string { return x.prefix + "j:" + digest(iss, jti) }
func (x *Index) endedKey(storeKey string) string {
	sum := sha256.Sum256([]byte(storeKey))
	return x.prefix + "x:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// settle is shared by the scripts: it drops the expired members of the
// sorted set k and sets k to expire with its last member (or deletes it).
const settle = `
local function settle(k, now)
  if not k or k == '' then return end
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  if #top == 0 then redis.call('DEL', k) else redis.call('PEXPIREAT', k, top[2]) end
end
`

// addScript: KEYS = token key, subject set[, OP-session set];
// ARGV = store key, expiry ms, now ms, cap, token key prefix.
// Returns the evicted store keys.
var addScript = redis.NewScript(settle + `
local token, exp, now, cap, tprefix = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local tkey, skey, dkey = KEYS[1], KEYS[2], KEYS[3] or ''
local old = redis.call('HMGET', tkey, 's', 'd')
if old[1] then redis.call('ZREM', old[1], token) end
if old[2] and old[2] ~= '' then redis.call('ZREM', old[2], token) end
redis.call('DEL', tkey)
redis.call('HSET', tkey, 's', skey, 'd', dkey)
redis.call('PEXPIREAT', tkey, exp)
redis.call('ZADD', skey, exp, token)
if dkey ~= '' then redis.call('ZADD', dkey, exp, token) end
redis.call('ZREMRANGEBYSCORE', skey, '-inf', now)
local evicted = {}
while redis.call('ZCARD', skey) > cap do
  local c = redis.call('ZRANGE', skey, 0, 1)
  local victim = c[1]
  if victim == token then victim = c[2] end
  redis.call('ZREM', skey, victim)
  local vkey = tprefix .. victim
  local vd = redis.call('HGET', vkey, 'd')
  redis.call('DEL', vkey)
  if vd and vd ~= '' then
    redis.call('ZREM', vd, victim)
    if vd ~= dkey then settle(vd, now) end
  end
  evicted[#evicted + 1] = victim
end
settle(skey, now)
settle(dkey, now)
if old[1] and old[1] ~= skey then settle(old[1], now) end
if old[2] and old[2] ~= '' and old[2] ~= dkey then settle(old[2], now) end
return evicted
`)

// removeScript: KEYS = token key; ARGV = store key, now ms.
var removeScript = redis.NewScript(settle + `
local old = redis.call('HMGET', KEYS[1], 's', 'd')
redis.call('DEL', KEYS[1])
if old[1] then redis.call('ZREM', old[1], ARGV[1]); settle(old[1], ARGV[2]) end
if old[2] and old[2] ~= '' then redis.call('ZREM', old[2], ARGV[1]); settle(old[2], ARGV[2]) end
return 0
`)

// Add implements oxd.SessionIndex.
func (x *Index) Add(ctx context.Context, e sessionindex.Entry) ([]string, error) {
	now := time.Now()
	if err := e.Validate(now); err != nil {
		return nil, err
	}
	keys := []string{x.tokenKey(e.Token), x.subjectKey(e.Issuer, e.Subject)}
	if e.SID != "" {
		keys = append(keys, x.sidKey(e.Issuer, e.SID))
	}
	res, err := addScript.Run(ctx, x.c, keys, e.Token, ms(e.Expires), ms(now), x.max, x.tPrefix).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisindex: add: %w", err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	return res, nil
}

func (x *Index) lookup(ctx context.Context, op, key string) ([]string, error) {
	res, err := x.c.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: "(" + ms(time.Now()), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("redisindex: %s: %w", op, err)
	}
	return res, nil
}

// BySID implements oxd.SessionIndex.
func (x *Index) BySID(ctx context.Context, issuer, sid string) ([]string, error) {
	if err := sessionindex.CheckLookup(issuer, sid); err != nil {
		return nil, err
	}
	return x.lookup(ctx, "by sid", x.sidKey(issuer, sid))
}

// BySubject implements oxd.SessionIndex.
func (x *Index) BySubject(ctx context.Context, issuer, subject string) ([]string, error) {
	if err := sessionindex.CheckLookup(issuer, subject); err != nil {
		return nil, err
	}
	return x.lookup(ctx, "by subject", x.subjectKey(issuer, subject))
}

// Remove implements oxd.SessionIndex.
func (x *Index) Remove(ctx context.Context, storeKey string) error {
	if storeKey == "" || len(storeKey) > sessionindex.MaxTokenLen {
		return nil // never added
	}
	err := removeScript.Run(ctx, x.c, []string{x.tokenKey(storeKey)}, storeKey, ms(time.Now())).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisindex: remove: %w", err)
	}
	return nil
}

// MarkJTI implements oxd.SessionIndex with SET NX PX: of any number of
// replicas marking one (issuer, jti), exactly one sees fresh.
func (x *Index) MarkJTI(ctx context.Context, issuer, jti string, ttl time.Duration) (bool, error) {
	if err := sessionindex.CheckLookup(issuer, jti); err != nil {
		return false, err
	}
	if ttl <= 0 {
		return false, fmt.Errorf("%w: jti ttl %v is not positive", sessionindex.ErrInvalidEntry, ttl)
	}
	ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond) // whole ms, rounded up
	fresh, err := x.c.SetNX(ctx, x.jtiKey(issuer, jti), "1", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redisindex: mark jti: %w", err)
	}
	return fresh, nil
}

// MarkEnded implements oxd.SessionIndex: one key that expires at until
// (a later mark of the same store key extends it, never shortens it).
func (x *Index) MarkEnded(ctx context.Context, storeKey string, until time.Time) error {
	if storeKey == "" || len(storeKey) > sessionindex.MaxTokenLen {
		return fmt.Errorf("%w: store key empty or longer than %d bytes", sessionindex.ErrInvalidEntry, sessionindex.MaxTokenLen)
	}
	if !until.After(time.Now()) {
		return nil
	}
	if err := markEndedScript.Run(ctx, x.c, []string{x.endedKey(storeKey)}, ms(until), ms(time.Now())).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redisindex: mark ended: %w", err)
	}
	return nil
}

// markEndedScript: KEYS = ended key; ARGV = expiry ms, now ms. Sets the
// key to expire at ARGV[1] unless it already expires later.
var markEndedScript = redis.NewScript(`
local at = tonumber(ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 and tonumber(ARGV[2]) + ttl > at then return 0 end
redis.call('SET', KEYS[1], '1', 'PXAT', at)
return 1
`)

// Ended implements oxd.SessionIndex with one EXISTS.
func (x *Index) Ended(ctx context.Context, storeKey string) (bool, error) {
	if storeKey == "" || len(storeKey) > sessionindex.MaxTokenLen {
		return false, nil // never marked
	}
	n, err := x.c.Exists(ctx, x.endedKey(storeKey)).Result()
	if err != nil {
		return false, fmt.Errorf("redisindex: ended: %w", err)
	}
	return n > 0, nil
}
