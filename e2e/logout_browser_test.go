package e2e_test

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestDemoBrowserSignedOutAtOP: in Chromium, sign in to the demo (a
// process, with its embedded development OP), then sign out at the OP's
// own end-session page, not with the demo's button. The OP's back-channel
// logout ends the demo's session: reloading the demo shows "you were
// signed out at the OP", and the user info page asks for a login again.
func TestDemoBrowserSignedOutAtOP(t *testing.T) {
	bin := buildDemo(t)
	demo := startDemo(t, bin)
	ctx := demoBrowser(t)
	p := &pageDriver{t: t, ctx: ctx}
	p.do("open the settings page",
		chromedp.Navigate(demo.url+"/settings"),
		chromedp.WaitVisible(chromedp.CSS(`#register`)))
	opHost := p.value("#op_host")
	p.do("register the client",
		chromedp.Click(chromedp.CSS(`#register`)),
		chromedp.WaitVisible(chromedp.CSS(`#oxd-id`)))
	if opHost == "" {
		t.Fatal("e2e: the settings page names no OP")
	}
	p.do("sign in at the development OP",
		chromedp.Navigate(demo.url+"/login/start?return_to=/userinfo"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "alice-password"),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#claims`)))
	p.do("sign out at the OP's own end-session page",
		chromedp.Navigate(opHost+"/end_session"),
		chromedp.WaitVisible(chromedp.CSS(`button[name="logout"]`)),
		chromedp.Click(chromedp.CSS(`button[name="logout"]`)),
		// The confirmation page is gone: the OP answered the sign-out.
		chromedp.WaitNotPresent(chromedp.CSS(`button[name="logout"]`)),
		chromedp.WaitVisible(chromedp.CSS(`h1`)))
	p.expectText("h1", "Signed out")
	p.do("reload the demo",
		chromedp.Navigate(demo.url+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#ended-at-op`)))
	p.screenshot("signed-out-at-op")
	p.do("the user info page needs a login again",
		chromedp.Navigate(demo.url+"/userinfo"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)))
}
