package oxd_test

import (
	"log"
	"net/http"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/scsredis"
	"github.com/oxdgo/oxd/sessionindex/redisindex"
)

// pendingLoginKey is read from the application's secrets at startup.
var pendingLoginKey []byte

// Logout everywhere with net/http, for several replicas: the scs sessions
// and the session index in one Redis, the two logout channels mounted
// outside RequireLogin. Register their URLs at the OP with the site
// (register_site or setup_client: client_backchannel_logout_uri and
// client_frontchannel_logout_uris).
func ExampleAuth_BackChannelLogoutHandler() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	sessions := scs.New()
	sessions.Store = scsredis.New(rdb) // set the store before oxd.New
	idx, err := redisindex.New(rdb, redisindex.Options{})
	if err != nil {
		log.Fatal(err)
	}
	sock, err := oxdclient.NewSocket("127.0.0.1:8099", oxdclient.SocketConfig{})
	if err != nil {
		log.Fatal(err)
	}
	auth, err := oxd.New(oxdclient.New(sock, oxdclient.Config{}), sessions, oxd.Config{
		SiteFile:          "site.json",
		RedirectURL:       "https://app.example.com/callback",
		PendingLoginKey:   pendingLoginKey, // 32 secret random bytes, the same on every replica
		SessionIndex:      idx,             // every login is recorded; logout reaches every replica
		LogoutAllSessions: true,            // POST /logout ends all of the user's sessions
	})
	if err != nil {
		log.Fatal(err)
	}

	mux := http.NewServeMux()
	mux.Handle("/account/", auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	mux.Handle("GET /callback", auth.CallbackHandler())
	mux.Handle("POST /logout", auth.LogoutHandler())
	// The OP calls these, not the user: no RequireLogin, no CSRF check
	// (the back channel authenticates the OP by the logout token's
	// signature; the front channel by its sid).
	mux.Handle("POST /logout/backchannel", auth.BackChannelLogoutHandler())
	mux.Handle("GET /logout/frontchannel", auth.FrontChannelLogoutHandler())
	log.Fatal(http.ListenAndServeTLS(":8443", "cert.pem", "key.pem", sessions.LoadAndSave(mux)))
}
