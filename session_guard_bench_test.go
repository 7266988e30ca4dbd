package oxd

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/sessionindex"
)

// BenchmarkRequireLoginIndexed is P1 with Config.SessionIndex set (memory
// index): scs LoadAndSave alone over the plain memstore next to
// RequireLogin inside LoadAndSave over the same memstore wrapped by the
// store guard (endedGuard), same session. Without IdleTimeout nothing is
// written (the guard only passes the read through); with IdleTimeout scs
// writes the session on every request, and the guard asks the index after
// each write. The Interleaved sub-benchmarks report the median ratio, the
// P1 figure (target ≤ 1.10×, ≤ 3 extra allocs/op).
func BenchmarkRequireLoginIndexed(b *testing.B) {
	for _, idle := range []time.Duration{0, time.Hour} {
		b.Run(fmt.Sprintf("IdleTimeout=%v", idle), func(b *testing.B) {
			store := memstore.NewWithCleanupInterval(0)
			base := scs.New()
			base.Store = store
			base.IdleTimeout = idle
			sm := scs.New()
			sm.Store = store
			sm.IdleTimeout = idle
			a, err := New(oxdclient.New(newFakeOxd(), oxdclient.Config{}), sm, Config{
				OxdID: "id", PostLogoutRedirectURI: "https://app.example/bye",
				SessionIndex: sessionindex.NewMemory(sessionindex.MemoryOptions{}),
			})
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := sm.Store.(*endedGuard); !ok {
				b.Fatal("the store is not guarded")
			}
			ctx, _ := base.Load(context.Background(), "")
			base.Put(ctx, sessionKeyUser, benchSessionUser(time.Now()))
			token, _, err := base.Commit(ctx)
			if err != nil {
				b.Fatal(err)
			}
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, ok := UserFrom(r.Context()); !ok && r.URL.Path == "/mw" {
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
				w.WriteHeader(http.StatusOK)
			})
			hBase := base.LoadAndSave(next)
			hMW := sm.LoadAndSave(a.RequireLogin(next))
			newReq := func(path string) *http.Request {
				req, _ := http.NewRequest(http.MethodGet, "https://app.example"+path, nil)
				req.AddCookie(&http.Cookie{Name: sm.Cookie.Name, Value: token})
				return req
			}
			b.Run("LoadAndSave", func(b *testing.B) { benchServe(b, hBase, newReq("/base")) })
			b.Run("RequireLogin", func(b *testing.B) { benchServe(b, hMW, newReq("/mw")) })
			b.Run("Interleaved", func(b *testing.B) { benchInterleaved(b, hBase, newReq("/base"), hMW, newReq("/mw")) })
		})
	}
}
