package main

// The two places that follow the library's API as it evolves: the scs
// session store on Redis and the middleware's configuration.

import (
	"log/slog"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/scsredis"
)

// sessionStore is the scs store of the sessions on rdb: scsredis, on a
// go-redis UniversalClient (a single node or a Cluster).
func sessionStore(rdb redis.UniversalClient) (scs.Store, error) {
	return scsredis.New(rdb), nil
}

func newAuth(client *oxdclient.Client, sm *scs.SessionManager, site *oxdclient.Site, pub string, o options, logger *slog.Logger) (*oxd.Auth, error) {
	return oxd.New(client, sm, oxd.Config{
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
