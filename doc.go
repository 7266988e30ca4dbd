// Package oxd is net/http middleware that logs users in through an OpenID
// Connect Provider by way of Gluu's oxd mediator (oxd-server 3.1.x, its
// HTTPS extension, or the in-process engine of package oxdserver), keeping
// the identity in an [scs] session with any scs store.
//
// Three pieces wrap an application:
//
//   - [Auth.RequireLogin] guards handlers: a logged-in session passes with
//     the user in the request context ([UserFrom]); a browser is sent to the
//     OP; an API request gets 401 and never a redirect.
//   - [Auth.CallbackHandler] finishes a login at the registered redirect
//     URI.
//   - [Auth.LogoutHandler] ends the session locally and at the OP.
//
// [Auth.LoginHandler] starts a login from a "Sign in" link, and
// [Auth.Authenticated] tells a public page who is logged in, without side
// effects.
//
// # Wiring
//
//	sessions := scs.New()                 // any store: memstore, Redis, SQL…
//	sock, err := oxdclient.NewSocket("127.0.0.1:8099", oxdclient.SocketConfig{})
//	if err != nil { … }
//	auth, err := oxd.New(oxdclient.New(sock, oxdclient.Config{}), sessions, oxd.Config{
//		OxdID:                 "…",        // or SiteFile
//		PostLogoutRedirectURI: "https://app.example.com/logged-out",
//	})
//	if err != nil { … }
//
//	mux := http.NewServeMux()
//	mux.Handle("/account/", auth.RequireLogin(accountHandler))
//	mux.Handle("GET /callback", auth.CallbackHandler())   // the registered redirect URI
//	mux.Handle("POST /logout", auth.LogoutHandler())
//	mux.Handle("GET /logged-out", loggedOutPage)         // not behind RequireLogin
//	http.ListenAndServe(addr, sessions.LoadAndSave(mux))
//
// Wrapping the mux with sessions.LoadAndSave is the usual scs setup; the
// handlers of this package load the session themselves when it is not
// there. Inside a guarded handler:
//
//	u, _ := oxd.UserFrom(r.Context())
//	fmt.Fprintf(w, "Hello %s <%s>", u.Claim("name"), u.Claim("email"))
//	req.Header.Set("Authorization", "Bearer "+u.AccessToken().Reveal())
//
// # Browser or API
//
// Without a session, [IsAPIRequest] decides: a method other than GET/HEAD,
// an Accept header naming JSON, X-Requested-With: XMLHttpRequest, or a
// Sec-Fetch-Mode other than "navigate" make an API request, which gets
// 401 with WWW-Authenticate: Bearer realm="…" (and JSON from the default
// error handler). Everything else is redirected to the OP. Replace the
// decision with [Config.APIRequest].
//
// # Errors
//
// Every failure goes to one [ErrorHandler] with the HTTP status and an
// error that wraps one of the Err… reasons ([ErrStateMismatch],
// [ErrOPError], [ErrUnavailable], …; use errors.Is). The default renders
// a small HTML page, or JSON for API requests. oxd unreachable or slower
// than [Config.CallTimeout] gives 503, an oxd error answer 502. No error
// string or log line contains a token, a code or a client secret.
//
// # Sessions
//
// The session holds, once logged in, the [User] with its tokens. A login
// in progress is not in the session: it is one short-lived cookie per
// pending login, encrypted and authenticated under
// [Config.PendingLoginKey] (required with any store other than scs's
// in-memory one; give every replica the same key), so a browser that has
// not come back from the OP holds nothing on the server and anonymous
// traffic cannot fill the session store. [New] replaces scs's default
// gob codec with a compact one (a signed-in session is the [User]'s own
// binary encoding; other values still go through gob), which reads
// sessions gob wrote; [Config.GobSessions] keeps writing gob during a
// rolling upgrade. The package registers its types with encoding/gob, and
// [User] encodes itself, so a codec of the application's and every store
// work. Tokens stay on the server: the browser only carries
// scs's session cookie. The session's lifetime is scs's (Lifetime,
// IdleTimeout), but it ends earlier when the access token has expired and
// cannot be refreshed ([Config.InsecureKeepSessionPastTokenExpiry]); a
// login gives the session a new token and a fresh Lifetime, and a logout
// destroys it.
//
// # Security
//
// The answers of this package to the problems users of other Go OIDC
// libraries ran into most often:
//
//  1. State missing at the callback. The state lives in a pending-login
//     cookie (SameSite=Lax, so it comes back on the OP's redirect). New
//     refuses SameSite=Strict and a plain-http RedirectURL with Secure
//     cookies, and a callback without the cookie fails with
//     [ErrSessionCookieMissing] and a hint, not a generic mismatch. Several
//     application instances open each other's cookies with a shared
//     [Config.PendingLoginKey].
//  2. AJAX requests redirected to the IdP. API-style requests get 401 with
//     WWW-Authenticate, never a redirect; [Config.APIRequest] overrides.
//  3. Oversized cookies. Tokens and claims are kept in the scs store; the
//     cookie holds only the session token.
//  4. Refresh races. Refreshes run in a single flight keyed by a hash of
//     the refresh token, and the result is remembered for 30 seconds for
//     requests that still carry the old refresh token. Across application
//     instances a shared [RefreshLock] (package redislock) makes it one
//     refresh: the others wait and reload the session the holder wrote.
//  5. Logout that leaves the IdP session alive. [Auth.LogoutHandler]
//     redirects the browser to the OP's end-session URL from get_logout_uri
//     with id_token_hint and post_logout_redirect_uri (oxd-server 3.1.4
//     drops id_token_hint; the engine of package oxdserver keeps it).
//  6. Back-channel and front-channel logout are not supported: oxd 3.1 has
//     no back-channel registration, and a front-channel endpoint is not
//     provided yet. Sessions end at logout or at scs's lifetime.
//  7. Redirect loops. A failed callback renders an error instead of
//     redirecting; an expired login is restarted at most twice; a pending
//     login is used once.
//  8. SameSite=Strict sessions lost on the OP's redirect. New sets Lax and
//     refuses Strict.
//  9. Open redirects. The return-to is the request URI saved in the
//     encrypted pending-login cookie,
//     never a URL parameter of the callback; it is used only when it is a
//     same-origin path (no scheme, "//", backslashes, control characters
//     raw or percent-encoded, encoded slashes, userinfo, non-ASCII),
//     otherwise [Config.DefaultReturnTo]. The corpus in
//     testdata/openredirects.txt is tested through the real handlers.
//  10. Issuer matching (trailing slashes) is done by oxd when it validates
//     the ID token. The authorization response's iss (RFC 9207) is relayed
//     to the engine, which refuses another issuer, or a missing iss when
//     the OP announces it ([ErrIssuerMismatch]).
//  11. Key rotation is oxd's (the engine refetches the JWKS for an unknown
//     key id).
//  12. Step-up: [Config.AcrValues] are requested and the acr of the ID
//     token must be one of them ([ErrACRMismatch]), since acr_values can be
//     edited in the address bar; [Config.InsecureSkipACRCheck] opts out.
//  13. Weak state handling. The state is oxd's random value, bound to this
//     browser's pending-login cookie, compared in constant time, used once, bounded in
//     age ([Config.PendingLoginTTL]) and number ([Config.PendingLoginLimit]),
//     and never taken from the incoming request. A mismatch, a missing
//     state or a replay gets 400 without any oxd call.
//  14. "gob: type not registered for interface". The package registers
//     everything it stores; tests run the flows on memstore and Redis.
//  15. Observability. [Config.Logger] (log/slog) gets failures and
//     login/refresh/logout events without secrets; oxdclient's logger times
//     each oxd command; every oxd call carries the request's context, so an
//     instrumented transport can trace it. There is no built-in
//     OpenTelemetry dependency.
//
// Session fixation: the session token is renewed (scs RenewToken) after the
// code exchange and before the identity is stored, and the session is
// destroyed at logout. Cookies are Secure (unless [Config.InsecureCookies]),
// HttpOnly and SameSite=Lax; New sets them on the session manager. HTTPS is
// never inferred from the request. A logout POST must be same-origin
// ([http.CrossOriginProtection]).
//
// # Telemetry
//
// The middleware, the oxd client and the engine emit OpenTelemetry spans
// and metrics through [Config].TracerProvider and [Config].MeterProvider
// (and the same fields of [oxdclient.Config] and oxdserver.Config). Nil
// means the global providers: nothing is recorded until the application
// installs one (otel.SetTracerProvider, otel.SetMeterProvider), and while
// none is installed no span is started and no attribute is built, so the
// request paths cost what they cost without telemetry.
//
// Spans (span names are fixed; oxd.result is "ok" or a bounded code, also
// set as error.type with an error status): oxd.login.start,
// oxd.callback (result "ok", "restarted" or the failure reason of
// [Config].ErrorHandler's JSON, e.g. "state_mismatch"), oxd.refresh ("ok",
// "kept_token", "refused" or a reason), oxd.logout ("ok", "local_only" or
// a reason), oxd.backchannel_logout and oxd.frontchannel_logout ("ok",
// "invalid", "not_configured", …), and oxd.uma.decision for every UMA
// decision, cached grants included (oxd.result "allowed", "challenge",
// "unreachable", "config_error", …; oxd.cache "hit" or "miss"; oxd.route,
// the route template, never the path; http.request.method). Each oxd
// command is a client span "oxd <command>" of package oxdclient, its
// child.
//
// Metrics: oxd.login.started, oxd.login.completed, oxd.login.failures
// (oxd.reason), oxd.refresh, oxd.logout and oxd.backchannel_logout
// (oxd.result), oxd.uma.decisions (oxd.result, oxd.cache, oxd.route) and
// the gauge oxd.uma.grant_cache.size; oxdclient adds the command latency,
// the socket pool and its waits. No label holds a user, a path, a token
// or any other secret; spans hold no token, code, state, nonce, RPT or
// subject either.
//
// # Known limits
//
// Two logins started at the very same moment in two tabs of a browser that
// has no session yet race on the session (scs has no merge), and one of
// them fails with [ErrStateMismatch]; a second click works. oxd 3.1 does
// not let the client set the nonce, so nonce checking is oxd's.
//
// A back- or front-channel logout deletes the session from the scs store;
// a request of that session already in flight that then saves the session
// (a token refresh, or the login's own callback before its answer is
// written) writes it back, since scs stores have no conditional write, and
// that session is no longer in the index. The window is one request long.
//
// # Changelog
//
// Unreleased (house issues 11, 12): logout everywhere. Added
// [Auth.BackChannelLogoutHandler], [Auth.FrontChannelLogoutHandler],
// [Config].SessionIndex, [Config].LogoutAllSessions and
// [ErrLocalLogoutOnly]; Config.PostLogoutRedirectURI is optional. Removed
// User.Email and User.Name: use [User.Claim] ("email", "name"). A logout
// whose OP end-session URL cannot be built ends the local session and
// reports [ErrLocalLogoutOnly] to the ErrorHandler (status 200) instead of
// redirecting silently.
//
// Unreleased (house issue): a smaller API without stutter; behaviour is
// unchanged. Renamed: Config.OxdTimeout → [Config.CallTimeout],
// DefaultOxdTimeout → [DefaultCallTimeout], ErrOxdUnavailable →
// [ErrUnavailable], ErrOxdTimeout → [ErrTimeout], ErrOxdError →
// [ErrCommand], UMACondition → [UMAMethodRule], UMAScopeExpression →
// [UMAExpression]. Replaced: Auth.ConfigureUMA by the field [Config].UMA
// (validated by New; build a new Auth to change it). Removed: Auth.CheckUMA
// (use [UMAResult]), RouteTemplate (adapters use [WithRouteTemplate]),
// Auth.Client, Auth.Sessions and Auth.OxdID (keep what was passed to New).
// CHANGELOG.md in the repository lists every change with its replacement.
//
// [scs]: https://github.com/alexedwards/scs
package oxd
