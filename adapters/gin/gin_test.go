package oxdgin_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/alexedwards/scs/v2"
	"github.com/gin-gonic/gin"

	"github.com/oxdgo/oxd"
	oxdgin "github.com/oxdgo/oxd/adapters/gin"
	"github.com/oxdgo/oxd/adapters/internal/adaptertest"
)

func init() { gin.SetMode(gin.TestMode) }

func hello(c *gin.Context) { c.String(http.StatusOK, "%s", adaptertest.Hello(oxdgin.User(c))) }

func item(c *gin.Context) { c.String(http.StatusOK, "%s", adaptertest.Item(c.Request, c.Param("id"))) }

func TestLoginThroughGin(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		r := gin.New()
		oxdgin.Mount(r, auth, oxdgin.DefaultRoutes)
		r.GET(adaptertest.PrivatePath, oxdgin.RequireLogin(auth), hello)
		r.GET(adaptertest.LoggedOutPath, hello)
		return r
	})
	env.CheckLogin(t)
}

// Two concrete paths of one gin route are one UMA resource; a guard
// declared for another template than its route's is refused.
func TestUMAOneResourcePerGinRoute(t *testing.T) {
	env := adaptertest.New(t, func(auth *oxd.Auth) http.Handler {
		r := gin.New()
		api := r.Group("/api")
		api.GET("/photos/:id", oxdgin.UMAProtect(auth, "GET /api/photos/:id", "photos.read"), item)
		r.GET("/photos/:id", oxdgin.UMAProtect(auth, "GET /photos/{id}", "photos.read"), item)
		return r
	})
	env.CheckOneResource(t, "/api/photos/", "/api/photos/:id", "1", "2")
	env.CheckRefused(t, "/photos/1")
}

// Wrap: the middleware's request (context) reaches the handlers, and the
// chain stops when the middleware answers.
func TestWrap(t *testing.T) {
	type key struct{}
	pass := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Seen", "1")
			next.ServeHTTP(w, r.WithContext(contextWith(r, key{}, "v")))
		})
	}
	stop := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "stopped", http.StatusTeapot)
		})
	}
	r := gin.New()
	r.GET("/pass", oxdgin.Wrap(pass), func(c *gin.Context) {
		v, _ := c.Request.Context().Value(key{}).(string)
		c.String(http.StatusOK, "value=%s", v)
	})
	ran := false
	r.GET("/stop", oxdgin.Wrap(stop), func(c *gin.Context) { ran = true })
	for _, tc := range []struct {
		path, body string
		status     int
	}{{"/pass", "value=v", http.StatusOK}, {"/stop", "stopped\n", http.StatusTeapot}} {
		rec := serve(r, tc.path)
		if rec.Code != tc.status || rec.Body.String() != tc.body {
			t.Errorf("%s: %d %q", tc.path, rec.Code, rec.Body.String())
		}
	}
	if ran {
		t.Error("the handler after a middleware that answered ran")
	}
}

// A net/http middleware that writes headers at the first write of the
// response (scs.LoadAndSave sets the session cookie then) still does when
// the gin handler writes through c.Writer.
func TestWrapKeepsTheMiddlewaresWriter(t *testing.T) {
	sessions := scs.New()
	r := gin.New()
	r.GET("/put", oxdgin.Wrap(sessions.LoadAndSave), func(c *gin.Context) {
		sessions.Put(c.Request.Context(), "k", "v")
		c.String(http.StatusOK, "stored")
	})
	rec := serve(r, "/put")
	if rec.Code != http.StatusOK || rec.Body.String() != "stored" {
		t.Fatalf("%d %q", rec.Code, rec.Body.String())
	}
	if c := rec.Result().Header.Get("Set-Cookie"); !strings.HasPrefix(c, sessions.Cookie.Name+"=") {
		t.Fatalf("no session cookie: %q", c)
	}
}
