package e2e_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/oxdgo/oxd/e2e/harness"
)

// opPages drives the pages of one OP in the browser.
type opPages struct {
	opName string
	issuer string
	// signIn fills the OP's login (and consent) pages; the browser ends on
	// the demo's user-info page.
	signIn func(p *pageDriver, user, password string)
	// gatherClaims fills the AS's claims-gathering page; the browser ends
	// back on the demo's UMA page.
	gatherClaims func(p *pageDriver)
	// confirmLogout confirms the sign-out at the OP when it asks; the
	// browser ends on the demo's signed-out page.
	confirmLogout func(p *pageDriver)
	// user and email are what the user-info page shows for the user.
	user, name, email string
	// oxd is what the settings page says of the oxd the demo uses ("" to
	// leave it unchecked).
	oxd string
}

// The demo as a person uses it, on the embedded default: the development
// OP and the in-process engine.
func TestDemoBrowserEmbedded(t *testing.T) {
	bin := buildDemo(t)
	demo := startDemo(t, bin)
	ctx := demoBrowser(t)
	walkDemo(t, &pageDriver{t: t, ctx: ctx}, demo, devOPPages())
}

// devOPPages drives the development OP's pages (the demo's default OP).
func devOPPages() opPages {
	return opPages{
		opName: "development OP",
		signIn: func(p *pageDriver, user, password string) {
			p.do("the development OP's login page",
				chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)))
			p.screenshot("op-login")
			p.do("sign in at the development OP",
				chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), user),
				chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password),
				chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
				chromedp.WaitVisible(chromedp.CSS(`#claims`)))
		},
		gatherClaims: func(p *pageDriver) {
			p.do("the development OP's claims page",
				chromedp.WaitVisible(chromedp.CSS(`#claim-country`)))
			p.screenshot("op-claims")
			p.do("give the country claim",
				chromedp.SendKeys(chromedp.CSS(`#claim-country`), "DE"),
				chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
				chromedp.WaitVisible(chromedp.CSS(`#outcome.granted`)))
		},
		confirmLogout: func(p *pageDriver) {
			// With the id_token_hint the development OP signs out at once.
			p.do("back from the development OP's end-session endpoint",
				chromedp.WaitVisible(chromedp.CSS(`#logged-out`)))
		},
		user: "alice", name: "Alice Example", email: "alice@example.test",
	}
}

// The same walk with the certified OP (oidc-provider with its UMA layer)
// and the engine behind the oxd-server socket protocol, selected with the
// demo's -oxd and -op flags.
func TestDemoBrowserCertifiedOP(t *testing.T) {
	op := harness.StartOIDCProvider(t)
	oxdAddr := startSocketOxd(t)
	bin := buildDemo(t)
	demo := startDemo(t, bin, "-oxd", oxdAddr, "-op", op.Issuer())
	ctx := demoBrowser(t)
	pages := certifiedOPPages(op)
	pages.oxd = "oxd-server socket"
	walkDemo(t, &pageDriver{t: t, ctx: ctx}, demo, pages)
}

// certifiedOPPages drives the pages of the certified OP (oidc-provider and
// its UMA layer) for the user alice.
func certifiedOPPages(op *harness.OIDCProvider) opPages {
	return opPages{
		opName: "oidc-provider",
		issuer: op.Issuer(),
		signIn: func(p *pageDriver, user, password string) {
			p.do("oidc-provider's login page",
				chromedp.WaitVisible(chromedp.CSS(`input[name="login"]`)))
			p.screenshot("op-login")
			p.do("sign in at oidc-provider",
				chromedp.SendKeys(chromedp.CSS(`input[name="login"]`), user),
				chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password),
				chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
				chromedp.WaitReady(chromedp.CSS(`input[name="prompt"][value="consent"]`)))
			p.screenshot("op-consent")
			p.do("consent at oidc-provider",
				chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
				chromedp.WaitVisible(chromedp.CSS(`#claims`)))
		},
		gatherClaims: func(p *pageDriver) {
			p.do("oidc-provider's claims page",
				chromedp.WaitVisible(chromedp.CSS(`#email`)))
			p.screenshot("op-claims")
			p.do("give the e-mail claim",
				chromedp.SendKeys(chromedp.CSS(`#email`), "alice@example.test"),
				chromedp.Click(chromedp.CSS(`#submit-claims`)),
				chromedp.WaitVisible(chromedp.CSS(`#outcome.granted`)))
		},
		confirmLogout: func(p *pageDriver) {
			p.do("oidc-provider's sign-out confirmation",
				chromedp.WaitVisible(chromedp.CSS(`button[name="logout"]`)))
			p.screenshot("op-logout")
			p.do("confirm the sign-out",
				chromedp.Click(chromedp.CSS(`button[name="logout"][value="yes"]`)),
				chromedp.WaitVisible(chromedp.CSS(`#logged-out`)))
		},
		user: "alice", name: "Alice Example", email: "alice@example.test",
	}
}

// walkDemo: settings → register the client → sign in through the OP's
// login page → user info shows the claims → UMA page reaches "granted"
// (directly, after claims gathering, and in browser mode) and a denial →
// sign out back to the demo → settings: update, then delete.
func walkDemo(t *testing.T, p *pageDriver, demo *demoApp, op opPages) {
	oxdID, settings := demoRegister(t, p, demo, op)
	demoSignIn(t, p, demo, op)

	// UMA: a scope the AS grants.
	p.do("open the UMA page",
		chromedp.Click(chromedp.CSS(`nav a[href="/uma"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#request-photos`)))
	p.screenshot("uma")
	p.do("request the photos", chromedp.Click(chromedp.CSS(`#request-photos`)), chromedp.WaitVisible(chromedp.CSS(`#outcome`)))
	p.expectText("#outcome", "Access granted")
	p.expectText("#trace", "HTTP/1.1 401 Unauthorized", `WWW-Authenticate: UMA realm="oxd-demo"`, `ticket="`,
		"uma_rp_get_rpt", "The AS issued an RPT", "HTTP/1.1 200 OK", "Access granted: the RPT carries the scope photos.read")
	p.screenshot("uma-photos-granted")

	// A scope that needs a claim: need_info → the AS's claims page → RPT.
	p.do("request the reports", chromedp.Click(chromedp.CSS(`#request-reports`)), chromedp.WaitVisible(chromedp.CSS(`#claims-link`)))
	p.expectText("#outcome", "Claims needed")
	p.expectText("#trace", "need_info")
	p.screenshot("uma-claims-needed")
	p.do("go to the claims-gathering page", chromedp.Click(chromedp.CSS(`#claims-link`)))
	op.gatherClaims(p)
	p.expectText("#outcome", "Access granted")
	p.expectText("#trace", "The AS gathered the claims", "HTTP/1.1 200 OK")
	p.screenshot("uma-reports-granted")

	// A scope the AS refuses.
	p.do("request the admin area", chromedp.Click(chromedp.CSS(`#request-admin`)), chromedp.WaitVisible(chromedp.CSS(`#outcome.denied`)))
	p.expectText("#outcome", "Access denied")
	p.screenshot("uma-admin-denied")

	// Browser mode: the middleware obtains the RPT itself (pushing the ID
	// token as a claim token).
	p.do("open the browser-mode page",
		chromedp.Navigate(demo.url+"/uma"),
		chromedp.WaitVisible(chromedp.CSS(`#browser-link`)),
		chromedp.Click(chromedp.CSS(`#browser-link`)),
		chromedp.WaitVisible(chromedp.CSS(`#browser-granted`)))
	p.expectText("main", "Access granted", "WWW-Authenticate: UMA realm=")
	p.screenshot("uma-browser-granted")

	demoSignOut(t, p, demo, op)

	// Settings: update (update_site) and delete (remove_site).
	p.do("open the settings page again",
		chromedp.Navigate(demo.url+"/settings"),
		chromedp.WaitVisible(chromedp.CSS(`#update`)),
		chromedp.Click(chromedp.CSS(`input[name="scope"][value="offline_access"]`)),
		chromedp.Click(chromedp.CSS(`#update`)),
		chromedp.WaitVisible(chromedp.CSS(`#notice`)))
	p.expectText("#notice", "The client is updated (update_site)")
	if s := readDemoSettings(t, demo.settings); !containsString(s.Scopes, "offline_access") || s.Site == nil || s.Site.OxdID != oxdID {
		t.Errorf("e2e: settings after update: scopes %v, site %+v", s.Scopes, s.Site)
	}
	p.screenshot("settings-updated")
	p.do("delete the client", chromedp.Click(chromedp.CSS(`#delete`)), chromedp.WaitVisible(chromedp.CSS(`#register`)))
	p.expectText("#notice", "The client is deleted (remove_site)")
	if s := readDemoSettings(t, demo.settings); s.Site != nil {
		t.Errorf("e2e: the settings file still has a client after delete")
	}
	p.screenshot("settings-deleted")

	// Nothing secret went to the demo's output.
	if out := demo.proc.Output(); settings.Site.ClientSecret != "" && strings.Contains(out, settings.Site.ClientSecret) {
		t.Errorf("e2e: the demo's output contains the setup client's secret")
	}
}

// demoRegister opens the demo, checks the settings page's defaults and
// registers the client (setup_client); it returns the oxd_id and the
// settings file.
func demoRegister(t *testing.T, p *pageDriver, demo *demoApp, op opPages) (string, demoSettings) {
	t.Helper()
	// The start page.
	p.do("open the demo", chromedp.Navigate(demo.url+"/"), chromedp.WaitVisible(chromedp.CSS(`ol.steps`)))
	p.expectText("main", "oxd for Go demo", "Settings", "to do")
	p.expectText("header", "Not signed in")
	p.screenshot("home")

	// Settings: register the client (setup_client).
	p.do("open the settings page",
		chromedp.Click(chromedp.CSS(`nav a[href="/settings"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#register`)))
	p.expectText("main", "Register the client", "Redirect URI", "Post-logout redirect URI", "Claims redirect URI")
	for sel, want := range map[string]string{
		"#authorization_redirect_uri": demo.url + "/callback",
		"#post_logout_redirect_uri":   demo.url + "/logged-out",
		"#op_host":                    op.issuer,
	} {
		if got := p.value(sel); want != "" && got != want {
			t.Errorf("e2e: settings field %s is %q, want %q", sel, got, want)
		}
	}
	if op.oxd != "" {
		p.expectText("main", op.oxd)
	}
	p.screenshot("settings")
	p.do("register the client", chromedp.Click(chromedp.CSS(`#register`)), chromedp.WaitVisible(chromedp.CSS(`#oxd-id`)))
	p.expectText("#notice", "The client is registered (setup_client)")
	oxdID := p.text("#oxd-id")
	settings := readDemoSettings(t, demo.settings)
	if settings.Site == nil || settings.Site.OxdID != oxdID || settings.Site.ClientSecret == "" {
		t.Fatalf("e2e: the settings file does not hold the registered oxd_id %q (or no secret)", oxdID)
	}
	p.expectNoText("body", settings.Site.ClientSecret)
	p.screenshot("settings-registered")
	return oxdID, settings
}

// demoSignIn signs in through the OP's pages and checks the user-info page.
func demoSignIn(t *testing.T, p *pageDriver, demo *demoApp, op opPages) {
	t.Helper()
	p.do("open the sign-in page",
		chromedp.Click(chromedp.CSS(`nav a[href="/login"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#sign-in`)))
	p.expectText("main", "Sign in with the OP")
	p.screenshot("login")
	p.do("go to the OP", chromedp.Click(chromedp.CSS(`#sign-in`)))
	op.signIn(p, op.user, op.user+"-password")

	// User info.
	if loc := p.location(); loc != demo.url+"/userinfo" {
		t.Errorf("e2e: after sign-in the browser is at %s", loc)
	}
	p.expectText("#claims", "email", op.email, "name", op.name)
	p.expectText("#subject", op.user)
	p.expectText("#id-token-claims", "iss", "aud")
	p.expectText("header", "Signed in as", op.name)
	p.screenshot("userinfo")
}

// demoSignOut signs out: back to the demo, signed out of it and of the OP
// (the user-info page sends the browser to the OP's login page again).
func demoSignOut(t *testing.T, p *pageDriver, demo *demoApp, op opPages) {
	t.Helper()
	p.do("sign out", chromedp.Click(chromedp.CSS(`#logout`)))
	op.confirmLogout(p)
	p.expectText("#logged-out", "You are signed out")
	p.expectText("header", "Not signed in")
	p.screenshot("logged-out")
	p.do("open the user info again", chromedp.Navigate(demo.url+"/userinfo"), chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)))
	if loc := p.location(); strings.HasPrefix(loc, demo.url) {
		t.Errorf("e2e: after sign-out /userinfo stayed on the demo (%s)", loc)
	}
}

// demoSettings is the part of the demo's settings file the test reads.
type demoSettings struct {
	Scopes []string `json:"scope"`
	Site   *struct {
		OxdID        string `json:"oxd_id"`
		ClientSecret string `json:"client_secret"`
	} `json:"site"`
}

func readDemoSettings(t *testing.T, path string) demoSettings {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("e2e: settings file: %v", err)
	}
	var s demoSettings
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("e2e: settings file: %v", err)
	}
	return s
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
