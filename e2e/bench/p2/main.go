// Command p2 runs benchmark P2 of the design (§5): socket throughput of the
// oxdclient pooled socket transport against oxd-node@3.1.4, side by side in
// one run, with a number of concurrent callers (default 8) for a fixed time
// per measurement, on loopback only.
//
//	(a) against a fixed-response framed server (a Go loopback server that
//	    answers every frame with the same get_authorization_url answer):
//	    ours (an oxdclient.Client over a Socket with PoolSize = callers),
//	    oxd-node (oxdnode-load.js: the real package in socket mode, one TCP
//	    connection per command), and raw (one goroutine per caller, each
//	    with one kept-open connection, writing the same request frame as
//	    ours and reading the answer frame exactly).
//	    Targets: ours ≥ 8× oxd-node and ≥ 0.8× raw.
//	(b) against the engine's SocketServer (in this process, with the
//	    development OP in process and a site registered with setup_client)
//	    calling get_authorization_url: ours, oxd-node, and raw for
//	    reference. Target: ours ≥ 4× oxd-node.
//
// Each measurement is preceded by an uncounted warm-up. Rounds interleave
// the variants in a rotating order so that load changes on a shared
// machine hit all of them; the report gives the median calls/s with the
// spread over rounds, and the ratios computed within each round.
//
// Run it with `bash scripts/bench.sh p2` from the repository root; it
// prints a Markdown report on stdout (progress on stderr).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oxdgo/oxd/e2e/harness"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// fixedAnswer is what the fixed-response server answers to every frame: a
// get_authorization_url answer of oxd-server 3.1.x (the socket-3.1
// fixture, compacted; 452 bytes).
const fixedAnswer = `{"status":"ok","data":{"authorization_url":"https://ce-dev3.gluu.org/oxauth/restv1/authorize?response_type=code&client_id=@!1736.179E.AA60.16B2!0001!8F7C.B9AB!0008!A2BB.9AE6.5F14.B387&redirect_uri=https://client.example.org/cb&scope=openid+profile+email&state=473ot4nuqb4ubeokc139raur13&nonce=lbrdgorr974q66q6q9g454iccm&acr_values=basic&prompt=login&custom_response_headers=%5B%7B%22param1%22%3A%22value1%22%7D%2C%7B%22param2%22%3A%22value2%22%7D%5D"}}`

// fixedParams are the parameters sent to the fixed-response server.
var fixedParams = oxdclient.GetAuthorizationURLParams{
	OxdID:     "bcad760f-91ba-46e1-a020-05e4281d91b6",
	Scope:     []string{"openid", "profile", "email"},
	AcrValues: []string{"basic"},
}

type options struct {
	duration, warmup time.Duration
	rounds, callers  int
	single           bool
	only             string
	node, nodeDir    string
	script           string
	variants         string
	cpuprofile       string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured time of each measurement")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "uncounted warm-up before each measurement")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds (every variant measured once per round)")
	flag.IntVar(&o.callers, "callers", 8, "concurrent callers")
	flag.BoolVar(&o.single, "single", true, "also measure with one caller")
	flag.StringVar(&o.only, "only", "", `"a" (fixed-response server) or "b" (engine) only`)
	flag.StringVar(&o.node, "node", "", "node binary (default: node on PATH)")
	flag.StringVar(&o.nodeDir, "oxdnode-dir", "", "npm project holding oxd-node (default: e2e/oxdnode)")
	flag.StringVar(&o.script, "script", "", "load script (default: e2e/bench/p2/oxdnode-load.js)")
	flag.StringVar(&o.variants, "variants", "ours,oxd-node,oxd-node-logs,raw",
		"comma-separated variants to measure (oxd-node: its console.log silenced; oxd-node-logs: as shipped, logging to /dev/null)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of this process (client, servers, engine) to the file")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "p2:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.rounds < 1 || o.callers < 1 || o.duration <= 0 {
		return errors.New("rounds, callers and duration must be positive")
	}
	if o.only != "" && o.only != "a" && o.only != "b" {
		return fmt.Errorf("-only must be a or b, not %q", o.only)
	}
	if o.nodeDir == "" || o.script == "" {
		d := harness.Dir()
		if d == "" {
			return errors.New("cannot find the e2e directory; pass -oxdnode-dir and -script")
		}
		if o.nodeDir == "" {
			o.nodeDir = filepath.Join(d, "oxdnode")
		}
		if o.script == "" {
			o.script = filepath.Join(d, "bench", "p2", "oxdnode-load.js")
		}
	}
	if o.node == "" {
		p, err := exec.LookPath("node")
		if err != nil {
			return errors.New("node is not installed")
		}
		o.node = p
	}
	oxdNodeVersion, err := packageVersion(filepath.Join(o.nodeDir, "node_modules", "oxd-node", "package.json"))
	if err != nil {
		return fmt.Errorf("oxd-node is not installed in %s (npm ci there): %w", o.nodeDir, err)
	}
	m := describeMachine(o.node, oxdNodeVersion)

	fixed, err := startFixedServer()
	if err != nil {
		return err
	}
	defer fixed.close()
	op, err := oxdtest.StartOP(oxdtest.OPConfig{})
	if err != nil {
		return err
	}
	defer op.Close()

	callerCounts := []int{o.callers}
	if o.single && o.callers != 1 {
		callerCounts = append(callerCounts, 1)
	}
	type key struct {
		target  string
		callers int
	}
	var order []key
	targets := []string{"a", "b"}
	if o.only != "" {
		targets = []string{o.only}
	}
	for _, t := range targets {
		for _, n := range callerCounts {
			order = append(order, key{t, n})
		}
	}
	results := map[key]map[string][]result{}
	for _, k := range order {
		results[k] = map[string][]result{}
	}
	var variants []string
	for _, v := range strings.Split(o.variants, ",") {
		switch v = strings.TrimSpace(v); v {
		case "ours", "oxd-node", "oxd-node-logs", "raw":
			variants = append(variants, v)
		default:
			return fmt.Errorf("unknown variant %q", v)
		}
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	for r := 0; r < o.rounds; r++ {
		for _, k := range order {
			// Rotate the order of the variants from round to round.
			vs := append(slices.Clone(variants[r%len(variants):]), variants[:r%len(variants)]...)
			for _, v := range vs {
				res, err := measure(o, k.target, v, k.callers, fixed, op)
				if err != nil {
					return fmt.Errorf("round %d, (%s), %d callers, %s: %w", r+1, k.target, k.callers, v, err)
				}
				fmt.Fprintf(os.Stderr, "round %d/%d (%s) %d caller(s) %-13s %9.0f calls/s %7.1f µs CPU/call  (%d calls in %v, %d errors)\n",
					r+1, o.rounds, k.target, k.callers, v, res.rate(), res.cpuPerCall(), res.calls, res.elapsed.Round(time.Millisecond), res.errors)
				results[k][v] = append(results[k][v], res)
			}
		}
	}
	m.loadEnd = loadAverage()

	var out strings.Builder
	m.write(&out, o)
	name := func(k key) string {
		if k.target == "b" {
			return "(b) engine"
		}
		return "(a) fixed"
	}
	fmt.Fprintf(&out, "Calls/s (higher is better):\n\n")
	fmt.Fprintf(&out, "| target | callers | ours (oxdclient) | oxd-node@%s, logs off | oxd-node@%s as shipped, logs to /dev/null | raw loop |\n", oxdNodeVersion, oxdNodeVersion)
	out.WriteString("|---|---:|---:|---:|---:|---:|\n")
	for _, k := range order {
		rs := results[k]
		fmt.Fprintf(&out, "| %s | %d | %s | %s | %s | %s |\n", name(k), k.callers,
			spread(rates(rs["ours"]), "%.0f"), spread(rates(rs["oxd-node"]), "%.0f"),
			spread(rates(rs["oxd-node-logs"]), "%.0f"), spread(rates(rs["raw"]), "%.0f"))
	}
	out.WriteString("\nRatios, taken within each round (targets at 8 callers: (a) ours ≥ 8× oxd-node and ≥ 0.8× raw; (b) ours ≥ 4× oxd-node; judged against oxd-node with its logs off, the faster of the two):\n\n")
	out.WriteString("| target | callers | ours / oxd-node (logs off) | ours / oxd-node (as shipped) | ours / raw | raw / oxd-node (logs off) | targets |\n")
	out.WriteString("|---|---:|---:|---:|---:|---:|---|\n")
	allMet := true
	for _, k := range order {
		rs := results[k]
		vsNode := ratios(rs["ours"], rs["oxd-node"])
		vsShipped := ratios(rs["ours"], rs["oxd-node-logs"])
		vsRaw := ratios(rs["ours"], rs["raw"])
		verdict := "—"
		if k.callers == o.callers && o.callers == 8 && len(vsNode) > 0 && (k.target == "b" || len(vsRaw) > 0) {
			switch k.target {
			case "a":
				okNode, okRaw := median(vsNode) >= 8, median(vsRaw) >= 0.8
				verdict = fmt.Sprintf("≥ 8× oxd-node: %s; ≥ 0.8× raw: %s", met(okNode), met(okRaw))
				allMet = allMet && okNode && okRaw
			case "b":
				ok := median(vsNode) >= 4
				verdict = fmt.Sprintf("≥ 4× oxd-node: %s", met(ok))
				allMet = allMet && ok
			}
		}
		fmt.Fprintf(&out, "| %s | %d | %s | %s | %s | %s | %s |\n", name(k), k.callers,
			spread(vsNode, "%.2f×"), spread(vsShipped, "%.2f×"), spread(vsRaw, "%.2f×"),
			spread(ratios(rs["raw"], rs["oxd-node"]), "%.2f×"), verdict)
	}
	out.WriteString("\nCPU time per call in µs (user + system charged to every process involved: client, server or engine, and node for oxd-node; lower is better):\n\n")
	out.WriteString("| target | callers | ours | oxd-node, logs off | oxd-node as shipped | raw loop |\n|---|---:|---:|---:|---:|---:|\n")
	for _, k := range order {
		rs := results[k]
		fmt.Fprintf(&out, "| %s | %d | %s | %s | %s | %s |\n", name(k), k.callers,
			spread(cpuPerCall(rs["ours"]), "%.1f"), spread(cpuPerCall(rs["oxd-node"]), "%.1f"),
			spread(cpuPerCall(rs["oxd-node-logs"]), "%.1f"), spread(cpuPerCall(rs["raw"]), "%.1f"))
	}
	out.WriteString("\nEach cell: median over the rounds, (min–max) in brackets.\n")
	fmt.Print(out.String())
	if !allMet {
		fmt.Fprintln(os.Stderr, "p2: at least one target is missed (see the table)")
	}
	return nil
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// result is one measurement. cpu is the CPU time (user + system) that
// every process involved spent during it: this process (client, servers,
// engine, OP) plus, for oxd-node, the node process.
type result struct {
	calls, errors int64
	elapsed, cpu  time.Duration
	firstError    string
}

func (r result) rate() float64 { return float64(r.calls) / r.elapsed.Seconds() }

// cpuPerCall is in microseconds.
func (r result) cpuPerCall() float64 { return float64(r.cpu.Microseconds()) / float64(r.calls) }

func cpuPerCall(rs []result) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.cpuPerCall()
	}
	return out
}

// processCPU returns the CPU time (user + system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rates(rs []result) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.rate()
	}
	return out
}

func ratios(a, b []result) []float64 {
	out := make([]float64, 0, len(a))
	for i := range min(len(a), len(b)) {
		out = append(out, a[i].rate()/b[i].rate())
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func spread(v []float64, format string) string {
	if len(v) == 0 {
		return "—"
	}
	if len(v) == 1 {
		return fmt.Sprintf(format, v[0])
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", median(v), slices.Min(v), slices.Max(v))
}

// measure runs one variant against one target.
func measure(o options, target, variant string, callers int, fixed *fixedServer, op *oxdtest.OP) (result, error) {
	addr := fixed.addr()
	params := fixedParams
	if target == "b" {
		eng, err := startEngine(op)
		if err != nil {
			return result{}, err
		}
		defer eng.close()
		addr = eng.addr
		params = oxdclient.GetAuthorizationURLParams{OxdID: eng.oxdID}
	}
	var (
		res result
		err error
	)
	switch variant {
	case "ours":
		res, err = measureOurs(o, addr, params, callers)
	case "raw":
		res, err = measureRaw(o, addr, params, callers)
	case "oxd-node":
		res, err = measureOxdNode(o, addr, params, callers, false)
	case "oxd-node-logs":
		res, err = measureOxdNode(o, addr, params, callers, true)
	}
	if err == nil && res.errors > 0 {
		err = fmt.Errorf("%d failed calls, the first: %s", res.errors, res.firstError)
	}
	if err == nil && res.calls == 0 {
		err = errors.New("no call completed")
	}
	return res, err
}

// goLoad runs call from callers goroutines until d has passed (after an
// uncounted warm-up) and counts the calls that succeeded.
func goLoad(callers int, warmup, d time.Duration, call func(g int) error) result {
	phase := func(d time.Duration) result {
		var (
			stop   atomic.Bool
			calls  atomic.Int64
			errs   atomic.Int64
			first  sync.Once
			firstE string
			wg     sync.WaitGroup
		)
		cpu0 := processCPU()
		start := time.Now()
		t := time.AfterFunc(d, func() { stop.Store(true) })
		defer t.Stop()
		for g := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var n, bad int64
				for !stop.Load() {
					if err := call(g); err != nil {
						bad++
						first.Do(func() { firstE = err.Error() })
						if bad > 100 {
							break
						}
						continue
					}
					n++
				}
				calls.Add(n)
				errs.Add(bad)
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		return result{calls: calls.Load(), errors: errs.Load(), elapsed: elapsed, cpu: processCPU() - cpu0, firstError: firstE}
	}
	if warmup > 0 {
		phase(warmup)
	}
	return phase(d)
}

func measureOurs(o options, addr string, p oxdclient.GetAuthorizationURLParams, callers int) (result, error) {
	s, err := oxdclient.NewSocket(addr, oxdclient.SocketConfig{PoolSize: callers})
	if err != nil {
		return result{}, err
	}
	defer s.Close()
	c := oxdclient.New(s, oxdclient.Config{})
	ctx := context.Background()
	return goLoad(callers, o.warmup, o.duration, func(int) error {
		r, err := c.GetAuthorizationURL(ctx, p)
		if err == nil && r.AuthorizationURL == "" {
			err = errors.New("empty authorization_url")
		}
		return err
	}), nil
}

// requestFrame is the frame ours sends for p: 4-digit length, then
// {"command":…,"params":…} (ASCII only here, so bytes = UTF-16 units).
func requestFrame(p oxdclient.GetAuthorizationURLParams) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&p); err != nil {
		return nil, err
	}
	body := `{"command":"` + oxdclient.CmdGetAuthorizationURL + `","params":` + strings.TrimSuffix(buf.String(), "\n") + `}`
	if len(body) > 9999 {
		return nil, errors.New("request too large")
	}
	return []byte(fmt.Sprintf("%04d%s", len(body), body)), nil
}

// rawConn is the baseline: one kept-open connection, a pre-encoded
// request frame, an exact read of the answer frame.
type rawConn struct {
	c   net.Conn
	br  *bufio.Reader
	buf []byte
}

var okPrefix = []byte(`{"status":"ok"`)

func (r *rawConn) roundTrip(frame []byte) error {
	if _, err := r.c.Write(frame); err != nil {
		return err
	}
	var p [4]byte
	if _, err := io.ReadFull(r.br, p[:]); err != nil {
		return err
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return errors.New("bad length prefix")
		}
		n = n*10 + int(c-'0')
	}
	if _, err := io.ReadFull(r.br, r.buf[:n]); err != nil {
		return err
	}
	if !bytes.HasPrefix(r.buf[:n], okPrefix) {
		return errors.New("answer is not status ok")
	}
	return nil
}

func measureRaw(o options, addr string, p oxdclient.GetAuthorizationURLParams, callers int) (result, error) {
	frame, err := requestFrame(p)
	if err != nil {
		return result{}, err
	}
	conns := make([]*rawConn, callers)
	defer func() {
		for _, rc := range conns {
			if rc != nil {
				_ = rc.c.Close()
			}
		}
	}()
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return result{}, err
		}
		conns[i] = &rawConn{c: c, br: bufio.NewReaderSize(c, 4096), buf: make([]byte, 10000)}
	}
	return goLoad(callers, o.warmup, o.duration, func(g int) error { return conns[g].roundTrip(frame) }), nil
}

// measureOxdNode runs oxdnode-load.js. With logs, oxd-node's console.log
// output (four lines per command) goes to /dev/null as a service's stdout
// would go to a log; without, console.log is silenced. The script's
// results come over descriptor 3.
func measureOxdNode(o options, addr string, p oxdclient.GetAuthorizationURLParams, callers int, logs bool) (result, error) {
	pj, err := json.Marshal(&p)
	if err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.warmup+o.duration+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.node, o.script,
		"--dir", o.nodeDir, "--addr", addr, "--callers", strconv.Itoa(callers),
		"--duration-ms", strconv.FormatInt(o.duration.Milliseconds(), 10),
		"--warmup-ms", strconv.FormatInt(o.warmup.Milliseconds(), 10),
		"--params", string(pj), "--logs", map[bool]string{true: "on", false: "off"}[logs], "--results-fd", "3")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr // cmd.Stdout nil: /dev/null
	stdout, w, err := os.Pipe()
	if err != nil {
		return result{}, err
	}
	defer stdout.Close()
	cmd.ExtraFiles = []*os.File{w}
	err = cmd.Start()
	_ = w.Close()
	if err != nil {
		return result{}, err
	}
	var (
		r struct {
			Phase      string  `json:"phase"`
			Calls      int64   `json:"calls"`
			Errors     int64   `json:"errors"`
			ElapsedMS  float64 `json:"elapsed_ms"`
			CPUMS      float64 `json:"cpu_ms"`
			FirstError string  `json:"first_error"`
		}
		cpu0, cpu1 time.Duration
		lines      []string
		done       bool
	)
	// The server side of the measured phase is this process's CPU time
	// between the script's two lines.
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		r.Phase = ""
		if json.Unmarshal([]byte(line), &r) != nil {
			continue
		}
		if r.Phase == "measure" {
			cpu0 = processCPU()
			continue
		}
		cpu1, done = processCPU(), true
	}
	if err := cmd.Wait(); err != nil {
		return result{}, fmt.Errorf("oxdnode-load.js: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if !done || cpu0 == 0 {
		return result{}, fmt.Errorf("oxdnode-load.js printed %q", lines)
	}
	return result{
		calls: r.Calls, errors: r.Errors, firstError: r.FirstError,
		elapsed: time.Duration(r.ElapsedMS * float64(time.Millisecond)),
		cpu:     cpu1 - cpu0 + time.Duration(r.CPUMS*float64(time.Millisecond)),
	}, nil
}

// fixedServer answers every frame with fixedAnswer, on connections kept
// open as long as the client wants (oxd-node closes after one answer).
type fixedServer struct {
	ln     net.Listener
	answer []byte
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func startFixedServer() (*fixedServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &fixedServer{ln: ln, answer: fmt.Appendf(nil, "%04d%s", len(fixedAnswer), fixedAnswer), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = struct{}{}
			s.mu.Unlock()
			s.wg.Add(1)
			go s.serve(c)
		}
	}()
	return s, nil
}

func (s *fixedServer) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	br := bufio.NewReaderSize(c, 16<<10)
	var p [4]byte
	for {
		if _, err := io.ReadFull(br, p[:]); err != nil {
			return
		}
		n := 0
		for _, d := range p {
			if d < '0' || d > '9' {
				return
			}
			n = n*10 + int(d-'0')
		}
		if _, err := br.Discard(n); err != nil {
			return
		}
		if _, err := c.Write(s.answer); err != nil { // one write: oxd-node parses the first chunk
			return
		}
	}
}

func (s *fixedServer) addr() string { return s.ln.Addr().String() }

func (s *fixedServer) close() {
	_ = s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// engineTarget is an engine with a registered site behind a SocketServer.
type engineTarget struct {
	engine *oxdserver.Engine
	sock   *oxdserver.SocketServer
	served chan error
	addr   string
	oxdID  string
}

// startEngine starts a fresh engine (empty store) and its socket listener,
// and registers a site at op with setup_client.
func startEngine(op *oxdtest.OP) (*engineTarget, error) {
	// Protection off, as the oxd-node peer runs (3.1.4's shipped default):
	// the benchmark measures the protocol, not token introspection.
	eng, err := oxdserver.New(oxdserver.Config{InsecureNoProtection: true, InsecureAllowLoopbackHTTP: true})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	setup, err := oxdclient.New(eng, oxdclient.Config{}).SetupClient(ctx, oxdclient.SetupClientParams{
		SiteParams: oxdclient.SiteParams{
			OPHost:                   op.Issuer(),
			AuthorizationRedirectURI: oxdtest.DefaultRedirectURI,
			PostLogoutRedirectURI:    oxdtest.DefaultPostLogoutRedirectURI,
			Scope:                    []string{"openid", "profile", "email"},
			ClientName:               "p2 benchmark site",
		},
	})
	if err != nil {
		_ = eng.Close()
		return nil, fmt.Errorf("setup_client: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = eng.Close()
		return nil, err
	}
	t := &engineTarget{engine: eng, sock: &oxdserver.SocketServer{Engine: eng}, served: make(chan error, 1), addr: ln.Addr().String(), oxdID: setup.OxdID}
	go func() { t.served <- t.sock.Serve(ln) }()
	return t, nil
}

func (t *engineTarget) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.sock.Shutdown(ctx); err != nil {
		_ = t.sock.Close()
	}
	<-t.served
	_ = t.engine.Close()
}

// machine describes where the numbers come from.
type machine struct {
	cpu, kernel, goVersion, node, oxdNode string
	nproc, maxprocs                       int
	date                                  time.Time
	loadStart, loadEnd                    string
}

func describeMachine(node, oxdNodeVersion string) *machine {
	m := &machine{
		cpu: "unknown", kernel: "unknown", goVersion: runtime.Version(), oxdNode: oxdNodeVersion,
		nproc: runtime.NumCPU(), maxprocs: runtime.GOMAXPROCS(0), date: time.Now().UTC(), loadStart: loadAverage(),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command(node, "--version").Output(); err == nil {
		m.node = strings.TrimSpace(string(out))
	}
	return m
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func (m *machine) write(w io.Writer, o options) {
	fmt.Fprintf(w, "Machine: %s, nproc %d (GOMAXPROCS %d), Linux %s; %s; node %s; oxd-node %s. Run %s; load average (1, 5, 15 min) %s at start, %s at end.\n\n",
		m.cpu, m.nproc, m.maxprocs, m.kernel, m.goVersion, m.node, m.oxdNode, m.date.Format("2006-01-02 15:04 MST"), m.loadStart, m.loadEnd)
	fmt.Fprintf(w, "Settings: %d rounds; each measurement %v after a %v warm-up; variants interleaved in a rotating order; loopback only.\n\n",
		o.rounds, o.duration, o.warmup)
}

func packageVersion(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var p struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return "", err
	}
	return p.Version, nil
}
