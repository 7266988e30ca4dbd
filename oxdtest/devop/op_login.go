package devop

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
)

// ErrLoginFailed is returned by Login when the OP does not accept the
// credentials or does not show a login form.
var ErrLoginFailed = errors.New("devop: login failed")

var interactionField = regexp.MustCompile(`name="interaction" value="([^"]+)"`)

// Login signs in at the OP the way a browser would, but in process (no
// network, so it works whatever transport serves the OP): it opens
// authURL, an authorization request to this OP, submits the login form
// with username and password, and returns the URL the OP redirects to —
// normally the client's redirect_uri with code, state and iss, or with an
// error parameter. It does not follow that redirect. Every call starts
// with a fresh browser, so there is never an existing OP session.
//
// It is meant for tests that need an authorization code without driving
// HTML themselves.
func (op *OP) Login(ctx context.Context, authURL, username, password string) (*url.URL, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return nil, fmt.Errorf("devop: login: parse authorization URL: %w", err)
	}
	if u.Scheme != op.issuerURL.Scheme || u.Host != op.issuerURL.Host || u.Path != op.basePath+pathAuthorize {
		return nil, fmt.Errorf("devop: login: %q is not this OP's authorization endpoint", u.Redacted())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("devop: login: %w", err)
	}
	rec := httptest.NewRecorder()
	op.ServeHTTP(rec, req)
	res := rec.Result()
	if loc, ok := redirectTarget(res); ok {
		return loc, nil
	}
	m := interactionField.FindStringSubmatch(rec.Body.String())
	if res.StatusCode != http.StatusOK || m == nil {
		return nil, fmt.Errorf("%w: the OP answered %d without a login form", ErrLoginFailed, res.StatusCode)
	}
	form := url.Values{
		"interaction": {html.UnescapeString(m[1])},
		"username":    {username},
		"password":    {password},
	}
	post, err := http.NewRequestWithContext(ctx, http.MethodPost, op.url(pathLogin), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("devop: login: %w", err)
	}
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range res.Cookies() {
		post.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	rec = httptest.NewRecorder()
	op.ServeHTTP(rec, post)
	if loc, ok := redirectTarget(rec.Result()); ok {
		return loc, nil
	}
	return nil, fmt.Errorf("%w: credentials for %q not accepted", ErrLoginFailed, username)
}

func redirectTarget(res *http.Response) (*url.URL, bool) {
	if res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther {
		return nil, false
	}
	loc, err := res.Location()
	if err != nil {
		return nil, false
	}
	return loc, true
}
