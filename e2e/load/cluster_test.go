package load_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/oxdgo/oxd/e2e/load"
)

// TestRedisClusterPrimaryKilled is scenario (d) on a Redis Cluster: the
// sessions of both replicas live in a 3-primary Cluster (scsredis on a
// go-redis ClusterClient); a primary is killed mid-run and restarted with
// its append-only file. Signed-in users get 200 or a clean 503 meanwhile
// (503 only for sessions on the dead primary's slots), never a 500 or a
// redirect, and every session from before is there after.
func TestRedisClusterPrimaryKilled(t *testing.T) {
	users := 20
	if longMode() {
		users = 200
	}
	s := startStack(t, "cluster")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bs := make([]*load.Browser, users)
	for i := range bs {
		bs[i] = s.browser(fmt.Sprintf("user%04d", i))
	}
	if _, in := s.loginAll(t, bs); len(in) != len(bs) {
		t.FailNow()
	}
	bg := startTraffic(s, bs, true)
	time.Sleep(time.Second)
	victim := s.cluster.Nodes()[0]
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	time.Sleep(3 * time.Second) // past cluster-node-timeout (2 s): the cluster fails
	var anon []int
	for range 3 {
		r, err := s.anonymousStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		anon = append(anon, r.Status)
		// A new session whose key falls on a live primary is saved: the
		// login starts. One on the dead primary's slots: a clean 503.
		if r.Status != http.StatusServiceUnavailable && !isOPRedirect(r, s.op.Issuer) {
			t.Errorf("anonymous navigation while a primary is down: HTTP %d to %q, want 503 or the OP: %.100s", r.Status, r.Location, r.Body)
		}
	}
	s.cluster.RestartNode(t, victim)
	up := time.Now()
	var recovered time.Duration
	for {
		ok := 0
		for _, b := range bs[:min(5, len(bs))] {
			if r, err := b.Get(ctx, "/private/"+b.User, -1); err == nil && r.Status == http.StatusOK {
				ok++
			}
		}
		if ok == min(5, len(bs)) {
			recovered = time.Since(up)
			break
		}
		if time.Since(up) > 30*time.Second {
			t.Fatalf("no recovery 30 s after the primary came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	lost := afterOutage(t, ctx, bg, bs, "signed-in traffic while a Cluster primary was down", "a Cluster primary was down", "the primary's restart", "after-cluster")
	s.rec(t, "d_cluster_primary_killed", map[string]any{
		"primaries": len(s.cluster.Nodes()), "outage_ms": up.Sub(down).Milliseconds(), "recovered_after_ms": recovered.Milliseconds(),
		"answers": bg.counts, "sessions_before": len(bs), "sessions_lost": lost, "anonymous_during": anon,
	})
}
