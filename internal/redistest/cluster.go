package redistest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterOptions configure a Redis Cluster.
type ClusterOptions struct {
	// Primaries is the number of primaries, each serving a share of the
	// 16384 slots; 3 when zero (the least redis-cli accepts). There are no
	// replicas: a killed primary stays down, and its slots with it, until
	// it is restarted.
	Primaries int
	// Persist keeps each node's data across Stop, Kill and Restart (see
	// Options.Persist). The cluster configuration is always kept.
	Persist bool
	// NodeTimeout is cluster-node-timeout: how long a node may be
	// unreachable before the others mark it failed (and cluster_state turns
	// to fail). 2 s when zero.
	NodeTimeout time.Duration
}

// Cluster is a Redis Cluster of primaries on 127.0.0.1, created with
// `redis-cli --cluster create`.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts a Cluster of 3 primaries (default ClusterOptions) and
// waits until every node reports cluster_state:ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return StartClusterWith(t, ClusterOptions{})
}

// StartClusterWith starts a Cluster configured by o, creates it with
// redis-cli, and waits until every node reports cluster_state:ok with all
// slots served. Every node is stopped when the test ends.
func StartClusterWith(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if o.Primaries == 0 {
		o.Primaries = 3
	}
	if o.Primaries < 3 {
		t.Fatalf("redistest: a cluster needs at least 3 primaries, not %d", o.Primaries)
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = 2 * time.Second
	}
	bin := need(t, "redis-server")
	cli := need(t, "redis-cli")
	c := &Cluster{}
	args := []string{"--cluster", "create"}
	for range o.Primaries {
		s := startServer(t, bin, o.Persist, o.NodeTimeout, nil)
		c.nodes = append(c.nodes, s)
		args = append(args, s.addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	p, err := startProc("redis-cli --cluster create", cli, args)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	if !p.Wait(StartTimeout) {
		_ = p.Kill(stopTimeout)
		t.Fatalf("redistest: redis-cli --cluster create did not finish in %v: %s", StartTimeout, lastLines(p.Output(), 10))
	}
	_ = p.Kill(stopTimeout) // reaps the output reader
	if p.Err() != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v: %s", p.Err(), lastLines(p.Output(), 10))
	}
	c.WaitOK(t)
	return c
}

// Nodes are the primaries, in the order they were created.
func (c *Cluster) Nodes() []*Server { return append([]*Server(nil), c.nodes...) }

// Addrs are the primaries' addresses, the seed list of a cluster client.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr
	}
	return addrs
}

// Client returns a go-redis cluster client seeded with every node, closed
// when the test ends.
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	rc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

// WaitOK waits up to StartTimeout until every running node reports
// cluster_state:ok, all 16384 slots served and every node known, and fails
// the test otherwise.
func (c *Cluster) WaitOK(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if err := c.WaitState(ctx, "ok"); err != nil {
		t.Fatal(err)
	}
}

// WaitState waits until every running node reports cluster_state:state
// ("ok" or "fail"); for "ok" it also waits for all 16384 slots to be served
// and every node to be known. It returns an error naming the last state
// seen when ctx ends first.
func (c *Cluster) WaitState(ctx context.Context, state string) error {
	last := ""
	for {
		ready := true
		for _, n := range c.nodes {
			if !n.Running() {
				continue
			}
			info, err := clusterInfo(ctx, n.addr)
			if err != nil {
				last = n.addr + ": " + err.Error()
				ready = false
				break
			}
			ok := info["cluster_state"] == state
			if state == "ok" {
				ok = ok && info["cluster_slots_ok"] == "16384" &&
					info["cluster_known_nodes"] == strconv.Itoa(len(c.nodes))
			}
			if !ok {
				last = fmt.Sprintf("%s: cluster_state:%s cluster_slots_ok:%s cluster_known_nodes:%s",
					n.addr, info["cluster_state"], info["cluster_slots_ok"], info["cluster_known_nodes"])
				ready = false
				break
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redistest: cluster_state:%s not reached (%s): %w", state, last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// clusterInfo returns the fields of CLUSTER INFO of the node at addr.
func clusterInfo(ctx context.Context, addr string) (map[string]string, error) {
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	defer rc.Close()
	s, err := rc.ClusterInfo(ctx).Result()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// NodeForKey returns the primary that serves key's slot, as a running node
// of the cluster reports it (CLUSTER KEYSLOT, CLUSTER SHARDS).
func (c *Cluster) NodeForKey(t testing.TB, key string) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var lastErr error
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		s, err := nodeForKey(ctx, c, n.addr, key)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("redistest: no node for key %q: %v", key, lastErr)
	return nil
}

func nodeForKey(ctx context.Context, c *Cluster, addr, key string) (*Server, error) {
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1})
	defer rc.Close()
	slot, err := rc.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return nil, err
	}
	shards, err := rc.ClusterShards(ctx).Result()
	if err != nil {
		return nil, err
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if slot < r.Start || slot > r.End {
				continue
			}
			for _, m := range sh.Nodes {
				if m.Role != "master" {
					continue
				}
				addr := net.JoinHostPort(m.IP, strconv.FormatInt(m.Port, 10))
				for _, n := range c.nodes {
					if n.addr == addr {
						return n, nil
					}
				}
				return nil, fmt.Errorf("slot %d is served by %s, not a node of this cluster", slot, addr)
			}
		}
	}
	return nil, fmt.Errorf("slot %d is not served", slot)
}

// RestartNode restarts node n of the cluster (see Server.Restart) and waits
// until the whole cluster is ok again.
func (c *Cluster) RestartNode(t testing.TB, n *Server) {
	t.Helper()
	n.Restart(t)
	c.WaitOK(t)
}
