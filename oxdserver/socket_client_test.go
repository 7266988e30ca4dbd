package oxdserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oxdgo/oxd/oxdclient"
)

// TestSocketWithPooledClient runs oxdclient's pooled socket transport
// against the listener in both modes: concurrent callers, non-ASCII both
// ways, and the generic internal error (after which the server closes the
// connection and the client must not reuse it).
func TestSocketWithPooledClient(t *testing.T) {
	for _, quirks := range []bool{false, true} {
		t.Run(fmt.Sprintf("quirks=%v", quirks), func(t *testing.T) {
			ex := newFakeExec()
			srv := &SocketServer{Quirks314: quirks}
			addr := startSocket(t, srv, ex)
			tr, err := oxdclient.NewSocket(addr, oxdclient.SocketConfig{PoolSize: 4, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 40 {
						name := fmt.Sprintf("Zoë-Ω-😀-%d-%d", g, i)
						var out struct {
							Params struct{ Name string }
						}
						if err := tr.Do(ctx, "echo", map[string]string{"name": name}, &out); err != nil {
							errs <- err
							return
						}
						if out.Params.Name != name {
							errs <- fmt.Errorf("got %q, want %q", out.Params.Name, name)
							return
						}
						if i%10 == 5 {
							err := tr.Do(ctx, "generic", map[string]string{}, nil)
							if !oxdclient.IsGenericInternalError(err) {
								errs <- fmt.Errorf("generic: %v", err)
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			var oe *oxdclient.Error
			if err := tr.Do(ctx, "nope", map[string]string{}, nil); !errors.As(err, &oe) || oe.Code != oxdclient.CodeUnsupportedOperation {
				t.Fatalf("unknown command: %v", err)
			}
		})
	}
}

// BenchmarkSocketServer measures commands per second through the listener
// with a trivial engine: one persistent connection per caller, 8 callers.
func BenchmarkSocketServer(b *testing.B) {
	srv := &SocketServer{exec: &funcExec{reply: func(Request) (any, error) {
		return map[string]string{"authorization_url": "https://op.example/authorize?response_type=code&client_id=abc&state=xyz&nonce=123"}, nil
	}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	tr, err := oxdclient.NewSocket(ln.Addr().String(), oxdclient.SocketConfig{PoolSize: 8})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	params := map[string]any{"oxd_id": strings.Repeat("a", 36), "scope": []string{"openid", "profile"}}
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var out map[string]string
		for pb.Next() {
			if err := tr.Do(context.Background(), "get_authorization_url", params, &out); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
