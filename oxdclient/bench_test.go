package oxdclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Benchmarks P3 and P2 (client side) of the design (§5): the socket client
// against a raw 4-digit-framed round trip on the same loopback server, side
// by side in one run. The server answers every frame with the same
// get_authorization_url answer (fixture size, ~450 bytes).

// benchServer is a minimal fixed-answer framed server.
type benchServer struct {
	ln     net.Listener
	answer []byte
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func newBenchServer(b *testing.B, body string) *benchServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &benchServer{ln: ln, answer: []byte(fmt.Sprintf("%04d%s", len(body), body)), conns: map[net.Conn]struct{}{}}
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
			go func() {
				defer s.wg.Done()
				defer c.Close()
				br := bufio.NewReaderSize(c, 16<<10)
				var p [4]byte
				for {
					if _, err := io.ReadFull(br, p[:]); err != nil {
						return
					}
					n := int(p[0]-'0')*1000 + int(p[1]-'0')*100 + int(p[2]-'0')*10 + int(p[3]-'0')
					if _, err := br.Discard(n); err != nil {
						return
					}
					if _, err := c.Write(s.answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	b.Cleanup(func() {
		_ = ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// rawConn is the baseline: a kept-open connection, a pre-encoded request
// frame, an exact read of the answer frame.
type rawConn struct {
	c   net.Conn
	br  *bufio.Reader
	buf []byte
}

func dialRaw(b *testing.B, addr string) *rawConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return &rawConn{c: c, br: bufio.NewReaderSize(c, 4096), buf: make([]byte, 16<<10)}
}

func (r *rawConn) roundTrip(frame []byte) error {
	if _, err := r.c.Write(frame); err != nil {
		return err
	}
	var p [4]byte
	if _, err := io.ReadFull(r.br, p[:]); err != nil {
		return err
	}
	n := int(p[0]-'0')*1000 + int(p[1]-'0')*100 + int(p[2]-'0')*10 + int(p[3]-'0')
	_, err := io.ReadFull(r.br, r.buf[:n])
	return err
}

func benchParams() GetAuthorizationURLParams {
	return GetAuthorizationURLParams{
		OxdID:     "bcad760f-91ba-46e1-a020-05e4281d91b6",
		Scope:     []string{"openid", "profile", "email"},
		AcrValues: []string{"basic"},
	}
}

// benchFrame is exactly what the client sends for benchParams.
func benchFrame(b *testing.B) []byte {
	f := framePool.Get().(*frameBuf)
	defer framePool.Put(f)
	p := benchParams()
	frame, err := encodeFrame(f, CmdGetAuthorizationURL, &p, traceContext{})
	if err != nil {
		b.Fatal(err)
	}
	return append([]byte(nil), frame...)
}

// compactJSONString compacts a fixture keeping its key order (oxd writes
// "status" before "data").
func compactJSONString(b *testing.B, rel string) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, readFixture(b, rel)); err != nil {
		b.Fatal(err)
	}
	return buf.String()
}

// BenchmarkRoundTrip (P3): one caller; client = Client.GetAuthorizationURL
// over a pooled Socket (encode, frame, write, exact read, decode into the
// typed answer); raw = the same request bytes and an exact read of the
// answer on a kept-open connection. Target: client ≤ 1.5× raw.
func BenchmarkRoundTrip(b *testing.B) {
	srv := newBenchServer(b, compactJSONString(b, "socket-3.1/get_authorization_url.response.json"))
	addr := srv.ln.Addr().String()
	b.Run("client", func(b *testing.B) {
		s, err := NewSocket(addr, SocketConfig{PoolSize: 1})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		c := New(s, Config{})
		ctx := context.Background()
		p := benchParams()
		if _, err := c.GetAuthorizationURL(ctx, p); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			r, err := c.GetAuthorizationURL(ctx, p)
			if err != nil || r.AuthorizationURL == "" {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		rc := dialRaw(b, addr)
		frame := benchFrame(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := rc.roundTrip(frame); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPoolThroughput8 (P2 client side): 8 concurrent callers; client =
// one Client over a Socket with PoolSize 8; raw = 8 goroutines, each with
// its own kept-open connection. Reports calls/s.
func BenchmarkPoolThroughput8(b *testing.B) {
	const callers = 8
	srv := newBenchServer(b, compactJSONString(b, "socket-3.1/get_authorization_url.response.json"))
	addr := srv.ln.Addr().String()
	run := func(b *testing.B, call func(g int) error) {
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for g := 0; g < callers; g++ {
			n := b.N / callers
			if g < b.N%callers {
				n++
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < n; i++ {
					if err := call(g); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	}
	b.Run("client", func(b *testing.B) {
		s, err := NewSocket(addr, SocketConfig{PoolSize: callers})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		c := New(s, Config{})
		ctx := context.Background()
		p := benchParams()
		run(b, func(int) error {
			_, err := c.GetAuthorizationURL(ctx, p)
			return err
		})
	})
	b.Run("raw", func(b *testing.B) {
		frame := benchFrame(b)
		conns := make([]*rawConn, callers)
		for i := range conns {
			conns[i] = dialRaw(b, addr)
		}
		run(b, func(g int) error { return conns[g].roundTrip(frame) })
	})
}

// BenchmarkRoundTripInterleaved runs the P3 comparison with client and raw
// round trips alternating in blocks of 64 within one benchmark, so that
// load from other processes hits both alike; it reports each side's ns per
// round trip and their ratio (client/raw, target ≤ 1.5).
func BenchmarkRoundTripInterleaved(b *testing.B) {
	srv := newBenchServer(b, compactJSONString(b, "socket-3.1/get_authorization_url.response.json"))
	addr := srv.ln.Addr().String()
	s, err := NewSocket(addr, SocketConfig{PoolSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := New(s, Config{})
	ctx := context.Background()
	p := benchParams()
	rc := dialRaw(b, addr)
	frame := benchFrame(b)
	if _, err := c.GetAuthorizationURL(ctx, p); err != nil {
		b.Fatal(err)
	}
	const block = 64
	var clientT, rawT time.Duration
	var clientN, rawN int
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(block, b.N-done)
		t0 := time.Now()
		for i := 0; i < n; i++ {
			if _, err := c.GetAuthorizationURL(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for i := 0; i < n; i++ {
			if err := rc.roundTrip(frame); err != nil {
				b.Fatal(err)
			}
		}
		clientT += t1.Sub(t0)
		rawT += time.Since(t1)
		clientN += n
		rawN += n
		done += n
	}
	b.StopTimer()
	cns := float64(clientT.Nanoseconds()) / float64(clientN)
	rns := float64(rawT.Nanoseconds()) / float64(rawN)
	b.ReportMetric(cns, "client-ns/rt")
	b.ReportMetric(rns, "raw-ns/rt")
	b.ReportMetric(cns/rns, "client/raw")
}

// BenchmarkPoolThroughput8Interleaved runs the P2 client-side comparison
// with phases alternating between the client (one Client, PoolSize 8) and
// the raw loops (8 kept-open connections), 8 callers each, so that load
// from other processes hits both alike; it reports both rates and their
// ratio (client/raw, target ≥ 0.8).
func BenchmarkPoolThroughput8Interleaved(b *testing.B) {
	const callers, phase = 8, 32
	srv := newBenchServer(b, compactJSONString(b, "socket-3.1/get_authorization_url.response.json"))
	addr := srv.ln.Addr().String()
	s, err := NewSocket(addr, SocketConfig{PoolSize: callers})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := New(s, Config{})
	ctx := context.Background()
	p := benchParams()
	frame := benchFrame(b)
	conns := make([]*rawConn, callers)
	for i := range conns {
		conns[i] = dialRaw(b, addr)
	}
	runPhase := func(call func(g int) error) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for g := 0; g < callers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < phase; i++ {
					if err := call(g); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	clientCall := func(int) error { _, err := c.GetAuthorizationURL(ctx, p); return err }
	rawCall := func(g int) error { return conns[g].roundTrip(frame) }
	runPhase(clientCall) // warm the pool
	var clientT, rawT time.Duration
	calls := 0
	b.ResetTimer()
	for calls < b.N {
		clientT += runPhase(clientCall)
		rawT += runPhase(rawCall)
		calls += callers * phase
	}
	b.StopTimer()
	cr := float64(calls) / clientT.Seconds()
	rr := float64(calls) / rawT.Seconds()
	b.ReportMetric(cr, "client-calls/s")
	b.ReportMetric(rr, "raw-calls/s")
	b.ReportMetric(cr/rr, "client/raw")
}

// memConn is a net.Conn that answers every write with a canned frame from
// memory: no system calls, no goroutines. It isolates the client's own
// cost per command.
type memConn struct {
	net.Conn
	answer []byte
	rd     bytes.Reader
}

func (m *memConn) Write(b []byte) (int, error) { m.rd.Reset(m.answer); return len(b), nil }
func (m *memConn) Read(b []byte) (int, error)  { return m.rd.Read(b) }
func (m *memConn) SetDeadline(time.Time) error { return nil }
func (m *memConn) Close() error                { return nil }

// BenchmarkClientOverhead: the client's CPU cost per command without any
// I/O (encode, frame, pool, exact read from a buffer, decode into the typed
// answer): what the client adds to a raw round trip.
func BenchmarkClientOverhead(b *testing.B) {
	body := compactJSONString(b, "socket-3.1/get_authorization_url.response.json")
	frame := []byte(fmt.Sprintf("%04d%s", len(body), body))
	s, err := NewSocket("127.0.0.1:1", SocketConfig{PoolSize: 1, Dialer: func(context.Context, string, string) (net.Conn, error) {
		return &memConn{answer: frame}, nil
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := New(s, Config{})
	ctx := context.Background()
	p := benchParams()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetAuthorizationURL(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}
