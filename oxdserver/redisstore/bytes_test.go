package redisstore_test

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdserver/redisstore"
)

func usedMemory(t *testing.T, c redis.UniversalClient) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "memory").Result()
	require.NoError(t, err)
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	t.Fatal("no used_memory in INFO memory")
	return 0
}

// TestRedisStorePendingLoginBytes (design P9): what one pending login
// holds in Redis at the per-site bound: the state's value (61 bytes) under
// its key, with an entry in the store's and the group's index. The bound
// documented in oxdserver (DefaultMaxValuesPerGroup pending logins of a
// site hold about 4.5 MB) rests on it.
func TestRedisStorePendingLoginBytes(t *testing.T) {
	c := startRedis(t)
	ctx := testCtx(t)
	r := redisstore.New(c, "oxd:")
	const n = 10_000
	site := "2f6a1c4e-8d3b-4a51-9f0e-6b7c2d1e3f40" // an oxd_id's length
	value := make([]byte, 61)
	before := usedMemory(t, c)
	for i := range n {
		key := "state:" + site + "/" + strconv.FormatInt(int64(i), 32) + strings.Repeat("s", 28)
		require.NoError(t, r.PutValue(ctx, key[:min(len(key), len("state:")+len(site)+1+32)], value, 5*time.Minute))
	}
	per := float64(usedMemory(t, c)-before) / n
	t.Logf("Redis bytes per pending login: %.0f", per)
	if per > 512 {
		t.Errorf("a pending login holds %.0f bytes in Redis, want at most 512", per)
	}
}

// TestRedisStoreDropsTheEarlierIndex: the index of every value that
// earlier versions kept without expiry ("{v}vidx") is removed by the next
// PutValue, so an upgraded deployment does not keep it for ever.
func TestRedisStoreDropsTheEarlierIndex(t *testing.T) {
	c := startRedis(t)
	ctx := testCtx(t)
	require.NoError(t, c.ZAdd(ctx, "oxd:{v}vidx", redis.Z{Score: 1, Member: "state:x/old"}).Err())
	r := redisstore.New(c, "oxd:")
	require.NoError(t, r.PutValue(ctx, "state:x/new", []byte("v"), time.Minute))
	n, err := c.Exists(ctx, "oxd:{v}vidx").Result()
	require.NoError(t, err)
	require.Zero(t, n, "the earlier index is still there")
	v, err := r.TakeValue(ctx, "state:x/new")
	require.NoError(t, err)
	require.Equal(t, "v", string(v))
	keys, err := c.Keys(ctx, "oxd:*").Result()
	require.NoError(t, err)
	require.Empty(t, keys, "keys left after the only value was taken")
}
