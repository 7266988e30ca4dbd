// Command peer runs the peer benchmark of the design (§5, P6–P8): our login
// middleware (two replicas of e2e/load/app behind a round-robin proxy, oxd
// over the socket to cmd/oxd-server; with -in-process, which is the
// default, also two more replicas with the oxd engine in process and its
// store in the same Redis) side by side with oauth2-proxy (Redis session
// store) in front of the same upstream handler, against the same OP
// (oidc-provider) and the same Redis, in one run on loopback. Our site's
// client authenticates at the token endpoint with -client-auth
// (client_secret_basic by default, as oauth2-proxy does).
//
// Figures, per round (each round starts with another side, every other
// round in reverse order):
//
//   - complete logins/s: HTTP clients drive the OP's login form
//     (-logins per side, -login-concurrency at once);
//   - RP-side CPU seconds per 1,000 logins: utime+stime (/proc/<pid>/stat)
//     of our processes (both replicas and oxd-server, if any; the replicas
//     alone are reported too) vs the oauth2-proxy process; the OP is
//     excluded;
//   - Redis bytes per signed-in session: MEMORY USAGE of the keys the
//     logins added, per login, and the INFO used_memory delta per login;
//   - authenticated requests/s and p50/p99 latency with -clients concurrent
//     signed-in clients for -duration.
//
// oauth2-proxy is not part of the repository: -oauth2-proxy names a binary
// built with `go install github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6`
// into a temporary GOBIN (scripts/load.sh --peer does that).
//
// It prints a Markdown report on stdout (progress on stderr) and appends
// JSON lines to e2e/artifacts/load-peer.json.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oxdgo/oxd/e2e/harness"
	"github.com/oxdgo/oxd/e2e/load"
	"github.com/oxdgo/oxd/oxdclient"
)

type options struct {
	o2p              string
	rounds           int
	logins, loginsC  int
	clients          int
	duration, warmup time.Duration
	clientAuth       string
	inProcess        bool
}

// Names of our sides.
const (
	sideOxdServer = "oxd (2 replicas, oxd-server)"
	sideEngine    = "oxd (2 replicas, engine in process)"
)

func main() {
	var o options
	flag.StringVar(&o.o2p, "oauth2-proxy", "", "path of the oauth2-proxy v7.15.6 binary (required)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds (each measures both sides)")
	flag.IntVar(&o.logins, "logins", 100, "logins per side per round")
	flag.IntVar(&o.loginsC, "login-concurrency", 16, "logins in flight at once")
	flag.IntVar(&o.clients, "clients", 64, "concurrent signed-in clients of the throughput measurement")
	flag.DurationVar(&o.duration, "duration", 8*time.Second, "throughput measurement time per side per round")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "uncounted warm-up before each throughput measurement")
	flag.StringVar(&o.clientAuth, "client-auth", "client_secret_basic",
		"token endpoint authentication of our site's client; oauth2-proxy's is client_secret_basic; \"\" lets the engine pick the strongest the OP lists (private_key_jwt, ES256)")
	flag.BoolVar(&o.inProcess, "in-process", true, "also measure two replicas with the oxd engine in process (no oxd-server)")
	flag.Parse()
	if o.o2p == "" || o.rounds < 1 || o.logins < o.clients || o.clients < 1 || o.duration <= 0 || o.duration > time.Minute {
		fmt.Fprintln(os.Stderr, "peer: -oauth2-proxy is required; -logins ≥ -clients ≥ 1; 0 < -duration ≤ 1m")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(1)
	}
}

// side is one gate in front of the upstream handler.
type side struct {
	name    string
	base    string // URL the browsers use
	rpProcs []*load.Proc
	// appProcs are our replicas alone (nil for oauth2-proxy)
	appProcs []*load.Proc
	key      string // Redis key pattern of its sessions
}

type roundResult struct {
	Side             string  `json:"side"`
	Round            int     `json:"round"`
	LoginsPerS       float64 `json:"logins_per_s"`
	CPUPer1000       float64 `json:"rp_cpu_s_per_1000_logins"`
	AppCPUPer1000    float64 `json:"app_cpu_s_per_1000_logins,omitempty"`
	BytesPerSession  float64 `json:"redis_bytes_per_session"`
	UsedMemPerLogin  float64 `json:"redis_used_memory_delta_per_login"`
	KeysPerSession   float64 `json:"redis_keys_per_session"`
	RequestsPerS     float64 `json:"requests_per_s"`
	P50              float64 `json:"p50_ms"`
	P99              float64 `json:"p99_ms"`
	Errors           int64   `json:"errors"`
	ThroughputErrors int64   `json:"throughput_errors"`
}

func run(o options) (err error) {
	art := filepath.Join(load.E2EDir(), "artifacts")
	tmp, err := os.MkdirTemp("", "oxd-peer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	env, err := load.NewEnv(filepath.Join(art, "load-logs", "peer"), filepath.Join(tmp, "bin"))
	if err != nil {
		return err
	}
	defer env.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	progress("building the app and oxd-server")
	if err := env.Build(ctx); err != nil {
		return err
	}
	rdbAddr, err := startRedis(ctx, env, tmp)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: rdbAddr})
	defer rdb.Close()
	op, err := env.StartOP(ctx)
	if err != nil {
		return err
	}
	progress("OP at %s, Redis at %s", op.Issuer, rdbAddr)

	// Ours: oxd-server, two replicas, the round-robin proxy; and, with
	// -in-process, two more replicas with the engine in process (no
	// oxd-server hop), behind their own round-robin proxy.
	oxd, err := env.StartOxd(ctx, rdbAddr, "info")
	if err != nil {
		return err
	}
	startOurs := func(name string, names []string, args ...string) (*side, error) {
		rr, err := load.NewRoundRobin()
		if err != nil {
			return nil, err
		}
		env.Defer(rr.Close)
		siteFile := filepath.Join(tmp, "site-"+names[0]+".json")
		if _, err := load.EnsureSite(ctx, oxd.Addr, siteFile, op.Issuer, rr.URL, func(p *oxdclient.SetupClientParams) {
			p.ClientTokenEndpointAuthMethod = o.clientAuth
		}); err != nil {
			return nil, err
		}
		s := &side{name: name, base: rr.URL, key: "scs:session:*"}
		var urls []string
		for _, n := range names {
			a, err := env.StartApp(ctx, n, append([]string{"-site-file", siteFile, "-redis", rdbAddr,
				"-public-url", rr.URL, "-log-level", "warn", "-call-timeout", "10s"}, args...)...)
			if err != nil {
				return nil, err
			}
			urls = append(urls, a.URL)
			s.appProcs = append(s.appProcs, a.Proc)
		}
		s.rpProcs = s.appProcs
		return s, rr.SetBackends(urls...)
	}
	ours, err := startOurs(sideOxdServer, []string{"A", "B"}, "-oxd", oxd.Addr)
	if err != nil {
		return err
	}
	ours.rpProcs = append(slices.Clone(ours.appProcs), oxd.Proc)
	sides := []*side{ours}
	if o.inProcess {
		eng, err := startOurs(sideEngine, []string{"C", "D"}, "-engine", "redis")
		if err != nil {
			return err
		}
		sides = append(sides, eng)
	}

	// Theirs: the same handler as upstream, oauth2-proxy in front.
	up, err := env.StartApp(ctx, "upstream", "-upstream", "-log-level", "warn")
	if err != nil {
		return err
	}
	o2pProc, o2pURL, err := startOAuth2Proxy(ctx, env, o.o2p, op, rdbAddr, up.URL)
	if err != nil {
		return err
	}
	theirs := &side{name: "oauth2-proxy", base: o2pURL, key: "_oauth2_proxy*", rpProcs: []*load.Proc{o2pProc}}

	progress("uptime: %s", uptime())
	sides = append(sides, theirs)
	var results []roundResult
	user := 0
	for r := 1; r <= o.rounds; r++ {
		// Each round starts with another side, every other round in
		// reverse: each side meets each position as often.
		order := append(slices.Clone(sides[(r-1)%len(sides):]), sides[:(r-1)%len(sides)]...)
		if r%2 == 0 {
			slices.Reverse(order)
		}
		for _, s := range order {
			res, err := measure(ctx, o, op, rdb, s, r, &user)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", s.name, r, err)
			}
			progress("round %d %s: %+v", r, s.name, res)
			results = append(results, res)
			if _, err := load.Record(filepath.Join(art, "load-peer.json"), toMap(res)); err != nil {
				return err
			}
		}
	}
	progress("uptime: %s", uptime())
	report(o, results)
	return nil
}

func progress(f string, a ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+f+"\n", a...)
}

func uptime() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

func toMap(r roundResult) map[string]any {
	b, _ := json.Marshal(r)
	m := map[string]any{}
	_ = json.Unmarshal(b, &m)
	m["scenario"] = "peer"
	return m
}

func startRedis(ctx context.Context, env *load.Env, dir string) (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server is not installed")
	}
	port, err := load.FreePort()
	if err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if _, err := env.Start("redis-server", "", nil, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "yes"); err != nil {
		return "", err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if harness.RedisPing(ctx, addr) == nil {
			return addr, nil
		}
		if time.Now().After(deadline) {
			return "", errors.New("redis-server did not answer PING")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startOAuth2Proxy(ctx context.Context, env *load.Env, bin string, op *load.OP, rdbAddr, upstream string) (*load.Proc, string, error) {
	port, err := load.FreePort()
	if err != nil {
		return nil, "", err
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	client, err := harness.DriverFor(op.Issuer).RegisterClient(ctx, map[string]any{
		"redirect_uris":              []string{base + "/oauth2/callback"},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "client_secret_basic",
		"scope":                      "openid profile email offline_access",
		"client_name":                "oauth2-proxy",
	})
	if err != nil {
		return nil, "", err
	}
	op.Proxy.Secrets.Add(client.Secret)
	secret := make([]byte, 16)
	rand.Read(secret)
	p, err := env.Start("oauth2-proxy", "", nil, bin,
		"--provider=oidc",
		"--oidc-issuer-url="+op.Issuer,
		"--client-id="+client.ID,
		"--client-secret="+client.Secret,
		"--redirect-url="+base+"/oauth2/callback",
		"--cookie-secret="+hex.EncodeToString(secret), // 32 characters: AES-256
		"--cookie-secure=false",
		"--email-domain=*",
		"--insecure-oidc-allow-unverified-email",
		"--scope=openid profile email offline_access",
		"--upstream="+upstream+"/",
		"--http-address=127.0.0.1:"+strconv.Itoa(port),
		"--session-store-type=redis",
		"--redis-connection-url=redis://"+rdbAddr,
		"--skip-provider-button",
		"--request-logging=false",
		"--auth-logging=false",
	)
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, base, nil
			}
		}
		if !p.Alive() || time.Now().After(deadline) {
			return nil, "", fmt.Errorf("oauth2-proxy did not start: %s", p.Tail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var transport = load.NewTransport()

// login signs a new browser in on s and returns it; the login is complete
// when the guarded page answers 200 with the upstream's body.
func login(ctx context.Context, op *load.OP, s *side, user string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Transport: transport, Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cb, err := harness.DriverFor(op.Issuer).LoginHTTP(ctx, hc, s.base+"/private/"+user, user, "pw-"+user)
	if err != nil {
		return nil, fmt.Errorf("login form: %w", err)
	}
	follow := &http.Client{Transport: transport, Jar: jar, Timeout: 60 * time.Second}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cb.String(), nil)
	resp, err := follow.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "hello sub=") || strings.HasPrefix(string(body), "hello sub= ") {
		return nil, fmt.Errorf("after the callback: HTTP %d: %.200s", resp.StatusCode, body)
	}
	return hc, nil
}

func cpu(ps []*load.Proc) float64 {
	t := 0.0
	for _, p := range ps {
		t += p.CPUSeconds()
	}
	return t
}

// redisKeys returns the keys matching pattern and their total MEMORY USAGE.
func redisKeys(ctx context.Context, rdb *redis.Client, pattern string) (map[string]bool, error) {
	keys := map[string]bool{}
	it := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for it.Next(ctx) {
		keys[it.Val()] = true
	}
	return keys, it.Err()
}

func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	s, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("no used_memory in INFO memory")
}

func measure(ctx context.Context, o options, op *load.OP, rdb *redis.Client, s *side, round int, user *int) (roundResult, error) {
	res := roundResult{Side: s.name, Round: round}
	runtime.GC()
	keysBefore, err := redisKeys(ctx, rdb, "*")
	if err != nil {
		return res, err
	}
	mem0, err := usedMemory(ctx, rdb)
	if err != nil {
		return res, err
	}

	// Logins.
	progress("round %d %s: logins", round, s.name)
	cpu0, app0 := cpu(s.rpProcs), cpu(s.appProcs)
	t0 := time.Now()
	browsers := make([]*http.Client, o.logins)
	var next atomic.Int64
	var errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	first := *user
	*user += o.logins
	for range o.loginsC {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= o.logins {
					return
				}
				hc, err := login(ctx, op, s, fmt.Sprintf("peer%05d", first+i))
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				browsers[i] = hc
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	if n := errs.Load(); n > 0 {
		return res, fmt.Errorf("%d of %d logins failed, first: %v", n, o.logins, firstErr.Load())
	}
	res.LoginsPerS = float64(o.logins) / el.Seconds()
	res.CPUPer1000 = (cpu(s.rpProcs) - cpu0) / float64(o.logins) * 1000
	if s.appProcs != nil {
		res.AppCPUPer1000 = (cpu(s.appProcs) - app0) / float64(o.logins) * 1000
	}

	// Redis bytes per signed-in session: the keys the logins added.
	mem1, err := usedMemory(ctx, rdb)
	if err != nil {
		return res, err
	}
	keysAfter, err := redisKeys(ctx, rdb, "*")
	if err != nil {
		return res, err
	}
	var bytes, nkeys int64
	for k := range keysAfter {
		if keysBefore[k] {
			continue
		}
		n, err := rdb.MemoryUsage(ctx, k).Result()
		if err != nil {
			continue // expired meanwhile
		}
		bytes += n
		nkeys++
	}
	res.BytesPerSession = float64(bytes) / float64(o.logins)
	res.KeysPerSession = float64(nkeys) / float64(o.logins)
	res.UsedMemPerLogin = float64(mem1-mem0) / float64(o.logins)

	// Authenticated throughput with o.clients signed-in clients.
	clients := browsers[:o.clients]
	progress("round %d %s: authenticated requests", round, s.name)
	lat, n, terrs := drive(ctx, s, clients, o.warmup, o.duration)
	res.RequestsPerS = float64(n) / o.duration.Seconds()
	res.P50 = load.Ms(quantile(lat, 0.5))
	res.P99 = load.Ms(quantile(lat, 0.99))
	res.ThroughputErrors = terrs
	if terrs > 0 {
		return res, fmt.Errorf("%d authenticated requests failed", terrs)
	}
	transport.CloseIdleConnections()
	return res, nil
}

// drive runs the clients in closed loops: warm-up, then the measured time.
func drive(ctx context.Context, s *side, clients []*http.Client, warmup, d time.Duration) ([]time.Duration, int, int64) {
	var mu sync.Mutex
	var all []time.Duration
	var errs atomic.Int64
	var measuring atomic.Bool
	start := time.Now()
	end := start.Add(warmup + d)
	var wg sync.WaitGroup
	for ci, hc := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; ; i++ {
				now := time.Now()
				if now.After(end) {
					break
				}
				if !measuring.Load() && now.Sub(start) >= warmup {
					measuring.Store(true)
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/private/c%d/%d", s.base, ci, i), nil)
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				el := time.Since(t0)
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
					continue
				}
				if measuring.Load() && t0.Sub(start) >= warmup {
					mine = append(mine, el)
				}
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, len(all), errs.Load()
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func report(o options, rs []roundResult) {
	by := map[string][]roundResult{}
	for _, r := range rs {
		by[r.Side] = append(by[r.Side], r)
	}
	theirs := by["oauth2-proxy"]
	col := func(rs []roundResult, f func(roundResult) float64) []float64 {
		var v []float64
		for _, r := range rs {
			v = append(v, f(r))
		}
		return v
	}
	// ratios within each round
	rat := func(ours []roundResult, f func(roundResult) float64) []float64 {
		var v []float64
		for i := range min(len(ours), len(theirs)) {
			if f(theirs[i]) != 0 {
				v = append(v, f(ours[i])/f(theirs[i]))
			}
		}
		return v
	}
	type row struct {
		id, what, target string
		f                func(roundResult) float64
		unit             string
		ok               func(ratio float64) bool
	}
	rows := []row{
		{"P6", "authenticated requests/s, 64 clients", "≥ 2×", func(r roundResult) float64 { return r.RequestsPerS }, "req/s", func(x float64) bool { return x >= 2 }},
		{"P6", "p50 latency, 64 clients", "—", func(r roundResult) float64 { return r.P50 }, "ms", nil},
		{"P6", "p99 latency, 64 clients", "≤ 0.5×", func(r roundResult) float64 { return r.P99 }, "ms", func(x float64) bool { return x <= 0.5 }},
		{"—", "complete logins/s", "—", func(r roundResult) float64 { return r.LoginsPerS }, "logins/s", nil},
		{"P7", "RP CPU s per 1,000 logins (ours: replicas + oxd-server if any)", "≤ 0.5×", func(r roundResult) float64 { return r.CPUPer1000 }, "CPU s", func(x float64) bool { return x <= 0.5 }},
		{"P7", "RP CPU s per 1,000 logins (ours: replicas alone)", "—", func(r roundResult) float64 {
			if r.AppCPUPer1000 == 0 {
				return r.CPUPer1000
			}
			return r.AppCPUPer1000
		}, "CPU s", nil},
		{"P8", "Redis bytes per signed-in session (MEMORY USAGE of new keys)", "≤ 1×", func(r roundResult) float64 { return r.BytesPerSession }, "bytes", func(x float64) bool { return x <= 1 }},
		{"P8", "Redis used_memory delta per login", "—", func(r roundResult) float64 { return r.UsedMemPerLogin }, "bytes", nil},
		{"P8", "Redis keys per signed-in session", "—", func(r roundResult) float64 { return r.KeysPerSession }, "keys", nil},
	}
	fmt.Printf("Peer benchmark, %d rounds (order rotated and reversed), %d logins per side per round (%d at once), %d clients × %v per side per round; %s\n\n",
		len(theirs), o.logins, o.loginsC, o.clients, o.duration, time.Now().UTC().Format("2006-01-02"))
	auth := o.clientAuth
	if auth == "" {
		auth = "the engine's choice (private_key_jwt, ES256)"
	}
	fmt.Printf("Client authentication at the token endpoint: ours %s, oauth2-proxy client_secret_basic.\n\n", auth)
	for _, name := range []string{sideOxdServer, sideEngine} {
		ours := by[name]
		if len(ours) == 0 {
			continue
		}
		fmt.Printf("%s vs oauth2-proxy:\n\n", name)
		fmt.Println("| id | figure | target (ours/theirs) | oxd, median | oauth2-proxy, median | ratio, median of rounds (min–max) | met |")
		fmt.Println("|---|---|---|---|---|---|---|")
		for _, r := range rows {
			rv := rat(ours, r.f)
			met := "—"
			if r.ok != nil && len(rv) > 0 {
				met = "no"
				if r.ok(median(rv)) {
					met = "yes"
				}
			}
			fmt.Printf("| %s | %s | %s | %.4g %s | %.4g %s | %.3g (%.3g–%.3g) | %s |\n", r.id, r.what, r.target,
				median(col(ours, r.f)), r.unit, median(col(theirs, r.f)), r.unit, median(rv), minf(rv), maxf(rv), met)
		}
		fmt.Println()
	}
	fmt.Println()
	fmt.Println("Raw rounds:")
	fmt.Println()
	fmt.Println("| round | side | logins/s | RP CPU s/1000 logins | replicas alone | bytes/session | used_memory Δ/login | keys/session | req/s | p50 ms | p99 ms |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		fmt.Printf("| %d | %s | %.1f | %.2f | %.2f | %.0f | %.0f | %.2f | %.0f | %.2f | %.2f |\n", r.Round, r.Side, r.LoginsPerS,
			r.CPUPer1000, r.AppCPUPer1000, r.BytesPerSession, r.UsedMemPerLogin, r.KeysPerSession, r.RequestsPerS, r.P50, r.P99)
	}
}

func minf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Min(v)
}

func maxf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Max(v)
}
