// Package exampletest checks a small example application the way a person
// uses it: sign in through the development OP, see the profile, sign out,
// and call the UMA-protected API (401 challenge, RPT, access).
package exampletest

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/oxdgo/oxd/examples/internal/devenv"
	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdtest"
)

// Check starts the embedded default on a free loopback port, builds the
// application with newApp, serves it, and walks through it.
func Check(t *testing.T, newApp func(ctx context.Context, env *devenv.Env) (http.Handler, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, err := devenv.Start(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	h, err := newApp(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- env.Serve(ctx, h) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	jar, _ := cookiejar.New(nil)
	c := env.HTTPClient(jar)
	get := func(target string, hdr ...string) (int, http.Header, string) {
		t.Helper()
		if strings.HasPrefix(target, "/") {
			target = env.URL(target)
		}
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}

	status, _, body := get("/")
	if status != http.StatusOK || !strings.Contains(body, `href="/profile"`) {
		t.Fatalf("home page: %d\n%s", status, body)
	}

	// Sign in.
	status, h1, _ := get("/profile", "Sec-Fetch-Mode", "navigate")
	if status != http.StatusSeeOther || !strings.HasPrefix(h1.Get("Location"), env.OP.Issuer()) {
		t.Fatalf("/profile before login: %d %q", status, h1.Get("Location"))
	}
	lctx, lcancel := context.WithTimeout(ctx, 30*time.Second)
	defer lcancel()
	cb, err := oxdtest.BrowserLogin(lctx, c, h1.Get("Location"), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	status, h2, _ := get(cb.String(), "Sec-Fetch-Mode", "navigate")
	if status != http.StatusSeeOther || h2.Get("Location") != "/profile" {
		t.Fatalf("callback: %d %q", status, h2.Get("Location"))
	}
	status, _, body = get("/profile", "Sec-Fetch-Mode", "navigate")
	if status != http.StatusOK || !strings.Contains(body, "Alice Example") || !strings.Contains(body, "alice@example.test") {
		t.Fatalf("profile: %d\n%s", status, body)
	}

	// The UMA-protected API: challenge, RPT, access.
	status, h3, body := get("/api/photos/1", "Accept", "application/json")
	ch := h3.Get("WWW-Authenticate")
	_, rest, ok := strings.Cut(ch, `ticket="`)
	ticket, _, _ := strings.Cut(rest, `"`)
	if status != http.StatusUnauthorized || !strings.HasPrefix(ch, "UMA ") || !ok || ticket == "" || body != "" {
		t.Fatalf("API without RPT: %d %q %q", status, ch, body)
	}
	rr, err := env.Client.UMARPGetRPT(lctx, oxdclient.UMARPGetRPTParams{OxdID: env.OxdID, Ticket: ticket})
	if err != nil {
		t.Fatalf("uma_rp_get_rpt: %v", err)
	}
	for _, id := range []string{"1", "2"} {
		status, _, body = get("/api/photos/"+id, "Authorization", "Bearer "+rr.AccessToken.Reveal(), "Accept", "application/json")
		if status != http.StatusOK || !strings.Contains(body, `"id":"`+id+`"`) {
			t.Fatalf("API /api/photos/%s with the RPT: %d %s", id, status, body)
		}
	}

	// Sign out: POST only, to the OP's end-session endpoint.
	req, _ := http.NewRequest(http.MethodPost, env.URL("/logout"), nil)
	req.Header.Set("Origin", env.BaseURL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), env.OP.Issuer()) {
		t.Fatalf("logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	status, _, _ = get("/profile", "Accept", "application/json")
	if status != http.StatusUnauthorized {
		t.Fatalf("after logout /profile (API): %d, want 401", status)
	}
}
