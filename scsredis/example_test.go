package scsredis_test

import (
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd/scsredis"
)

// A session manager on one Redis server and one on a Redis Cluster.
// redis.NewUniversalClient makes a *redis.Client for one address, a
// *redis.ClusterClient for several, and a Sentinel failover client when
// MasterName is set: scsredis takes each of them.
//
// ContextTimeoutEnabled makes go-redis end a command when the request's
// context ends; without it a stalled Redis holds each request for up to
// ReadTimeout whatever the context says.
func Example() {
	single := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{"127.0.0.1:6379"},
		ContextTimeoutEnabled: true,
		ReadTimeout:           time.Second,
		WriteTimeout:          time.Second,
	})
	defer single.Close()

	sm := scs.New()
	sm.Store = scsredis.New(single) // keys "scs:session:<token>"
	sm.Lifetime = 12 * time.Hour

	cluster := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
		ContextTimeoutEnabled: true,
	})
	defer cluster.Close()

	smCluster := scs.New()
	smCluster.Store = scsredis.NewWithPrefix(cluster, "myapp:session:")

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "seen", true)
	})
	_ = http.ListenAndServe("127.0.0.1:8080", sm.LoadAndSave(mux))
}
