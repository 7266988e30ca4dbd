package main

// The two places that follow the library's API as it evolves: the scs
// session store on Redis and the middleware's configuration.

import (
	"context"
	"crypto/rand"
	"log/slog"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/redislock"
	"github.com/oxdgo/oxd/scsredis"
)

// sessionStore is the scs store of the sessions on rdb: scsredis, on a
// go-redis UniversalClient (a single node or a Cluster).
func sessionStore(rdb redis.UniversalClient) (scs.Store, error) {
	return scsredis.New(rdb), nil
}

// pendingLoginKey is the Config.PendingLoginKey both replicas share. The
// suite has no secret store: the first replica draws a random key and
// leaves it in Redis (SET NX), the others read it. A real deployment
// hands every replica the key from its secret store instead.
func pendingLoginKey(rdb redis.UniversalClient) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	key := make([]byte, oxd.PendingLoginKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	const name = "loadapp:pending-login-key"
	if err := rdb.SetNX(ctx, name, key, 0).Err(); err != nil {
		return nil, err
	}
	return rdb.Get(ctx, name).Bytes()
}

func newAuth(client *oxdclient.Client, sm *scs.SessionManager, rdb redis.UniversalClient, site *oxdclient.Site, pub string, o options, logger *slog.Logger) (*oxd.Auth, error) {
	key, err := pendingLoginKey(rdb)
	if err != nil {
		return nil, err
	}
	return oxd.New(client, sm, oxd.Config{
		PendingLoginKey: key,
		// One refresh per session across the replicas.
		RefreshLock:           redislock.New(rdb, ""),
		OxdID:                 site.OxdID,
		RedirectURL:           pub + "/callback",
		PostLogoutRedirectURI: pub + "/logged-out",
		Scopes:                []string{"openid", "profile", "email", "offline_access"},
		Logger:                logger,
		CallTimeout:           o.callTimeout,
		// Plain http on loopback in the suite, as oauth2-proxy's
		// --cookie-secure=false in the peer benchmark.
		InsecureCookies: true,
	})
}
