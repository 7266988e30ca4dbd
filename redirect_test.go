package oxd

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

type redirectCase struct {
	name    string
	payload string
}

func loadOpenRedirects(t *testing.T) []redirectCase {
	t.Helper()
	f, err := os.Open("testdata/openredirects.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []redirectCase
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for line := 1; sc.Scan(); line++ {
		s := sc.Text()
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		name, quoted, ok := strings.Cut(s, "\t")
		if !ok {
			t.Fatalf("openredirects.txt:%d: no TAB", line)
		}
		p, err := strconv.Unquote(quoted)
		if err != nil {
			t.Fatalf("openredirects.txt:%d: %v", line, err)
		}
		if seen[name] {
			t.Fatalf("openredirects.txt:%d: duplicate name %s", line, name)
		}
		seen[name] = true
		out = append(out, redirectCase{name, p})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 50 {
		t.Fatalf("only %d payloads; the corpus must have at least 50", len(out))
	}
	return out
}

// TestOpenRedirectPayloadsRefused: every payload of the corpus is refused
// by the return-to check.
func TestOpenRedirectPayloadsRefused(t *testing.T) {
	for _, c := range loadOpenRedirects(t) {
		t.Run(c.name, func(t *testing.T) {
			if got, ok := safeReturnTo(c.payload); ok {
				t.Fatalf("safeReturnTo(%q) accepted as %q", c.payload, got)
			}
		})
	}
}

// TestOpenRedirectPayloadsThroughLogin runs every payload through the real
// handlers: /login?return_to=<payload>, the OP, the callback. The browser
// must land on the default return-to.
func TestOpenRedirectPayloadsThroughLogin(t *testing.T) {
	rg := newRig(t, rigOpts{})
	for _, c := range loadOpenRedirects(t) {
		t.Run(c.name, func(t *testing.T) {
			b := rg.browser()
			r := rg.login(b, "/login?return_to="+url.QueryEscape(c.payload), "alice")
			if r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
				t.Fatalf("callback: status %d Location %q, want 303 to /", r.status, r.header.Get("Location"))
			}
		})
	}
}

// TestOpenRedirectViaRequestPath: a request for "//evil.example/" (a path
// the server hands over verbatim as RequestURI) must not become an
// off-site return-to after login.
func TestOpenRedirectViaRequestPath(t *testing.T) {
	rg := newRig(t, rigOpts{})
	// Mount RequireLogin at the root without a mux (no path cleaning).
	h := rg.sm.LoadAndSave(rg.auth.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	for _, target := range []string{"//evil.example/", "/\\evil.example/", "///evil.example"} {
		req := httptest.NewRequest(http.MethodGet, "https://app.example/", nil)
		req.RequestURI = target
		req.URL = &url.URL{Path: target}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusSeeOther {
			t.Fatalf("%q: status %d", target, w.Code)
		}
		// Read the pending login back from its cookie; no session.
		var pl []pendingLogin
		for _, ck := range w.Result().Cookies() {
			if ck.Name == rg.sm.Cookie.Name {
				t.Fatalf("%q: a session was created for an anonymous navigation", target)
			}
			if p, ok := rg.auth.pending.open(ck.Name, ck.Value); ok {
				pl = append(pl, p)
			}
		}
		if len(pl) != 1 || pl[0].ReturnTo != "/" {
			t.Fatalf("%q: pending %+v, want return-to /", target, pl)
		}
	}
}

func TestSafeReturnToAccepts(t *testing.T) {
	for _, s := range []string{
		"/",
		"/private/page",
		"/private/page?x=1&y=2",
		"/a%20b",
		"/caf%C3%A9",
		"/search?q=%2F%2Fevil",
		"/?next=https://evil.example/",
		"/a/b/",
		"/path;params",
		"/a//b",
		"/~user/file.txt",
	} {
		got, ok := safeReturnTo(s)
		if !ok || got != s {
			t.Errorf("safeReturnTo(%q) = %q, %v; want accepted unchanged", s, got, ok)
		}
	}
}

func FuzzSafeReturnTo(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "//evil", "/%2F%2Fx", "/\\x", "https://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := safeReturnTo(s)
		if !ok {
			return
		}
		// Whatever is accepted resolves to this origin in a browser-like
		// resolution, and has no characters browsers strip.
		base, _ := url.Parse("https://app.example/some/page")
		ref, err := url.Parse(got)
		if err != nil {
			t.Fatalf("accepted %q does not parse", got)
		}
		if res := base.ResolveReference(ref); res.Host != "app.example" || res.Scheme != "https" {
			t.Fatalf("accepted %q resolves to %s", got, res)
		}
		if strings.ContainsAny(got, "\\\t\r\n\x00 ") || strings.HasPrefix(got, "//") {
			t.Fatalf("accepted %q", got)
		}
	})
}

func TestIsAPIRequest(t *testing.T) {
	cases := []struct {
		name   string
		method string
		hdr    map[string]string
		api    bool
	}{
		{"browser navigation", "GET", map[string]string{"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "Sec-Fetch-Mode": "navigate"}, false},
		{"plain GET", "GET", nil, false},
		{"HEAD", "HEAD", nil, false},
		{"accept json", "GET", map[string]string{"Accept": "application/json"}, true},
		{"accept problem+json", "GET", map[string]string{"Accept": "application/problem+json"}, true},
		{"accept json among others", "GET", map[string]string{"Accept": "application/json, text/plain, */*"}, true},
		{"xhr", "GET", map[string]string{"X-Requested-With": "XMLHttpRequest"}, true},
		{"fetch cors", "GET", map[string]string{"Sec-Fetch-Mode": "cors"}, true},
		{"fetch no-cors", "GET", map[string]string{"Sec-Fetch-Mode": "no-cors"}, true},
		{"fetch same-origin", "GET", map[string]string{"Sec-Fetch-Mode": "same-origin"}, true},
		{"websocket", "GET", map[string]string{"Sec-Fetch-Mode": "websocket"}, true},
		{"POST", "POST", nil, true},
		{"PUT", "PUT", nil, true},
		{"DELETE", "DELETE", nil, true},
		{"form POST navigation", "POST", map[string]string{"Sec-Fetch-Mode": "navigate"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, "/x", nil)
			for k, v := range c.hdr {
				r.Header.Set(k, v)
			}
			if got := IsAPIRequest(r); got != c.api {
				t.Fatalf("IsAPIRequest = %v, want %v", got, c.api)
			}
		})
	}
}

// The README states the size of the corpus; it must stay true.
func TestREADMEOpenRedirectCount(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`\((\d+) hostile payloads in ` + "`testdata/openredirects.txt`").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md no longer states the number of open-redirect payloads")
	}
	if got, want := string(m[1]), strconv.Itoa(len(loadOpenRedirects(t))); got != want {
		t.Fatalf("README.md says %s payloads, testdata/openredirects.txt has %s", got, want)
	}
}
