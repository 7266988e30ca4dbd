package logouttoken

import (
	"net/http"
	"testing"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd/internal/redistest"
	"github.com/oxdgo/oxd/sessionindex/redisindex"
)

// TestBackChannelTwoReplicasSharedRedis: two replicas share Redis for the
// scs sessions and the session index, each with its own clients, index
// value and validator. A logout token delivered to one replica ends the OP
// session's sessions started on both; its replay to the other replica is
// refused; the other user is untouched.
func TestBackChannelTwoReplicasSharedRedis(t *testing.T) {
	srv := redistest.Start(t)
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	replica := func() *testApp {
		idx, err := redisindex.New(srv.Client(t), redisindex.Options{})
		if err != nil {
			t.Fatal(err)
		}
		v := newValidator(t, op, idx, nil)
		return newTestApp(t, goredisstore.New(srv.Client(t)), true, idx, v, op.issuer, nil, nil)
	}
	r1, r2 := replica(), replica()
	alice1, alice2, bob := browser(t), browser(t), browser(t)
	r1.login(t, alice1, "alice", "op-session-1")
	r2.login(t, alice2, "alice", "op-session-1")
	r2.login(t, bob, "bob", "op-session-9")
	for _, r := range []*testApp{r1, r2} {
		for b, want := range map[*http.Client]string{alice1: "alice", alice2: "alice", bob: "bob"} {
			if got := r.whoami(t, b); got != want {
				t.Fatalf("before logout: %q, want %q (sessions not shared?)", got, want)
			}
		}
	}
	raw := sign(t, k, "JWT", op.claims())
	start := time.Now()
	if resp := r1.backchannel(t, raw); resp.status != http.StatusOK {
		t.Fatalf("back-channel logout on replica 1: %d %s", resp.status, resp.body)
	}
	took := time.Since(start)
	for _, r := range []*testApp{r1, r2} {
		for b, want := range map[*http.Client]string{alice1: "anonymous", alice2: "anonymous", bob: "bob"} {
			if got := r.whoami(t, b); got != want {
				t.Fatalf("after logout: %q, want %q", got, want)
			}
		}
	}
	t.Logf("back-channel logout of 2 sessions on 2 replicas answered in %v", took)
	desc := checkJSONError(t, r2.backchannel(t, raw), http.StatusBadRequest, "invalid_request")
	if desc != "invalid logout_token: "+Reason(ErrReplayed) {
		t.Fatalf("replay on replica 2: %q", desc)
	}
}

// TestReplayedJTIOnOtherReplica: two validators (replicas) share the Redis
// replay cache, on a single server and on a Redis Cluster; a token accepted
// by one is a replay for the other.
func TestReplayedJTIOnOtherReplica(t *testing.T) {
	k := newRSAKey("k1", 0)
	op := newTestOP(t, k)
	for name, clients := range map[string]func(t *testing.T) [2]redis.UniversalClient{
		"SingleServer": func(t *testing.T) [2]redis.UniversalClient {
			s := redistest.Start(t)
			return [2]redis.UniversalClient{s.Client(t), s.Client(t)}
		},
		"Cluster": func(t *testing.T) [2]redis.UniversalClient {
			c := redistest.StartCluster(t)
			return [2]redis.UniversalClient{c.Client(t), c.Client(t)}
		},
	} {
		t.Run(name, func(t *testing.T) {
			cs := clients(t)
			var vs [2]*Validator
			for i, c := range cs {
				idx, err := redisindex.New(c, redisindex.Options{})
				if err != nil {
					t.Fatal(err)
				}
				vs[i] = newValidator(t, op, idx, nil)
			}
			for range 3 {
				raw := sign(t, k, "JWT", op.claims())
				expectAccepted(t, vs[0], raw)
				expectRefused(t, vs[1], raw, ErrReplayed)
				expectRefused(t, vs[0], raw, ErrReplayed)
			}
		})
	}
}
