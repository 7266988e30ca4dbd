package oxdclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// patServer is an oxd that mints protection tokens pat-1, pat-2, … with
// get_client_token and accepts only the current one on protected commands.
type patServer struct {
	mu        sync.Mutex
	fetches   int
	expiresIn int
	valid     string // accepted token; "" = the latest minted
	rejectAs  string // error code for a wrong token
	attempts  map[string]int
	tokens    []string // tokens seen on protected commands
	gctParams []GetClientTokenParams
	gate      chan struct{} // if set, get_client_token waits on it
	fetchErr  string        // if set, get_client_token answers this envelope
}

func newPATServer() *patServer {
	return &patServer{expiresIn: 300, rejectAs: CodeInvalidProtectionAccessToken, attempts: map[string]int{}}
}

func (s *patServer) answer(command string, params []byte) string {
	if command == CmdGetClientToken {
		if s.gate != nil {
			<-s.gate
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		var p GetClientTokenParams
		_ = json.Unmarshal(params, &p)
		s.gctParams = append(s.gctParams, p)
		if s.fetchErr != "" {
			return s.fetchErr
		}
		s.fetches++
		b, _ := json.Marshal(map[string]any{"status": "ok", "data": map[string]any{
			"access_token": fmt.Sprintf("pat-%d", s.fetches), "expires_in": s.expiresIn, "refresh_token": nil, "scope": "openid oxd",
		}})
		return string(b)
	}
	var p struct {
		Token string `json:"protection_access_token"`
	}
	_ = json.Unmarshal(params, &p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts[command]++
	s.tokens = append(s.tokens, p.Token)
	valid := s.valid
	if valid == "" {
		valid = fmt.Sprintf("pat-%d", s.fetches)
	}
	if p.Token != valid {
		return fmt.Sprintf(`{"status":"error","data":{"error":%q,"error_description":"rejected","details":null}}`, s.rejectAs)
	}
	return `{"status":"ok","data":{"oxd_id":"ok","claims":{}}}`
}

var testCreds = ProtectionCredentials{
	ClientID: "setup-client", ClientSecret: "setup-secret", OPHost: "https://op.example", OPDiscoveryPath: "/oxauth",
}

func newPATClient(t testing.TB, s *patServer, creds ProtectionCredentials) (*Client, *fakeClock) {
	t.Helper()
	c := New(envelopeTransport(s.answer), Config{Protection: &creds})
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	c.ts.Load().ts.(*protectionTokens).now = clock.Now
	return c, clock
}

func getUserInfo(c *Client) error {
	_, err := c.GetUserInfo(context.Background(), GetUserInfoParams{OxdID: "o", AccessToken: "at"})
	return err
}

func TestProtectionTokenCachedUntilExpiryMinusMargin(t *testing.T) {
	s := newPATServer()
	c, clock := newPATClient(t, s, testCreds) // default margin 30s, expires_in 300
	if err := getUserInfo(c); err != nil {
		t.Fatal(err)
	}
	clock.Advance(269 * time.Second)
	if err := getUserInfo(c); err != nil {
		t.Fatal(err)
	}
	if s.fetches != 1 {
		t.Fatalf("%d fetches within the lifetime", s.fetches)
	}
	clock.Advance(2 * time.Second) // 271s: within the 30s margin
	if err := getUserInfo(c); err != nil {
		t.Fatal(err)
	}
	if s.fetches != 2 || !slices.Equal(s.tokens, []string{"pat-1", "pat-1", "pat-2"}) {
		t.Fatalf("%d fetches, tokens %v", s.fetches, s.tokens)
	}
	// get_client_token carried the setup client's credentials and the oxd
	// scope (reference §4).
	p := s.gctParams[0]
	if p.ClientID != "setup-client" || p.ClientSecret != "setup-secret" || p.OPHost != "https://op.example" || p.OPDiscoveryPath != "/oxauth" ||
		!slices.Contains(p.Scope, "oxd") || !slices.Contains(p.Scope, "openid") || !slices.Contains(p.Scope, "uma_protection") {
		t.Fatalf("%+v", p)
	}
}

func TestProtectionTokenMarginCappedAndScope(t *testing.T) {
	s := newPATServer()
	s.expiresIn = 20
	creds := testCreds
	creds.Scope = []string{"uma_protection"}
	creds.Margin = time.Minute
	c, clock := newPATClient(t, s, creds)
	_ = getUserInfo(c)
	clock.Advance(9 * time.Second) // margin capped at half the lifetime: valid 10s
	_ = getUserInfo(c)
	clock.Advance(2 * time.Second)
	_ = getUserInfo(c)
	if s.fetches != 2 {
		t.Fatalf("%d fetches", s.fetches)
	}
	if got := s.gctParams[0].Scope; !slices.Equal(got, []string{"uma_protection", "openid", "oxd"}) {
		t.Fatalf("scope %v", got)
	}
	if !slices.Equal(creds.Scope, []string{"uma_protection"}) {
		t.Fatal("caller's scope slice modified")
	}
}

// TestProtectionTokenSingleFlight: many goroutines needing a token at once
// cause one get_client_token.
func TestProtectionTokenSingleFlight(t *testing.T) {
	s := newPATServer()
	s.gate = make(chan struct{})
	c, _ := newPATClient(t, s, testCreds)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- getUserInfo(c)
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(s.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s.fetches != 1 || s.attempts[CmdGetUserInfo] != 50 {
		t.Fatalf("%d fetches, %d commands", s.fetches, s.attempts[CmdGetUserInfo])
	}
}

// TestProtectionTokenRetriedOnce: after blank/invalid/inactive token errors
// the command is retried once with a fresh token; insufficient scope is not
// retried; a second rejection is returned.
func TestProtectionTokenRetriedOnce(t *testing.T) {
	for _, code := range []string{CodeBlankProtectionAccessToken, CodeInvalidProtectionAccessToken, CodeInactiveProtectionAccessToken} {
		t.Run(code, func(t *testing.T) {
			s := newPATServer()
			s.rejectAs = code
			s.valid = "pat-2" // oxd no longer accepts the first token
			c, _ := newPATClient(t, s, testCreds)
			if err := getUserInfo(c); err != nil {
				t.Fatal(err)
			}
			if s.attempts[CmdGetUserInfo] != 2 || s.fetches != 2 || !slices.Equal(s.tokens, []string{"pat-1", "pat-2"}) {
				t.Fatalf("attempts %d fetches %d tokens %v", s.attempts[CmdGetUserInfo], s.fetches, s.tokens)
			}
			// The fresh token is cached.
			if err := getUserInfo(c); err != nil || s.fetches != 2 {
				t.Fatalf("%v, %d fetches", err, s.fetches)
			}
			// Never accepted: one retry, then the error.
			s.valid = "never"
			err := getUserInfo(c)
			if e := asOxdError(t, err); e.Code != code || e.Command != CmdGetUserInfo || s.attempts[CmdGetUserInfo] != 5 {
				t.Fatalf("%v after %d attempts", err, s.attempts[CmdGetUserInfo])
			}
		})
	}
	s := newPATServer()
	s.rejectAs = CodeProtectionAccessTokenInsufficientScope
	s.valid = "never"
	c, _ := newPATClient(t, s, testCreds)
	if err := getUserInfo(c); !IsProtectionTokenError(err) || s.attempts[CmdGetUserInfo] != 1 || s.fetches != 1 {
		t.Fatalf("insufficient scope: %v, %d attempts", err, s.attempts[CmdGetUserInfo])
	}
}

// TestProtectionTokenOnlyWhereNeeded: unprotected commands get no token,
// an explicit token is kept, and no source means no token.
func TestProtectionTokenOnlyWhereNeeded(t *testing.T) {
	s := newPATServer()
	c, _ := newPATClient(t, s, testCreds)
	ctx := context.Background()
	var sent []map[string]any
	inner := c.t
	c.t = funcTransport(func(ctx context.Context, command string, params, result any) error {
		b, _ := json.Marshal(params)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		sent = append(sent, m)
		return inner.Do(ctx, command, params, result)
	})
	_, _ = c.SetupClient(ctx, SetupClientParams{SiteParams: SiteParams{OPHost: "h"}})
	if s.fetches != 0 || sent[0]["protection_access_token"] != nil {
		t.Fatalf("token fetched or sent for an unprotected command: %v", sent)
	}
	s.valid = "mine"
	if _, err := c.GetUserInfo(ctx, GetUserInfoParams{OxdID: "o", Protection: Protection{ProtectionAccessToken: "mine"}}); err != nil {
		t.Fatal(err)
	}
	if s.fetches != 0 {
		t.Fatal("fetched although the params carried a token")
	}
	c.SetProtection(nil)
	s.valid = ""
	_ = getUserInfo(c)
	if last := s.tokens[len(s.tokens)-1]; last != "" || s.fetches != 0 {
		t.Fatalf("token %q without a source", last)
	}
}

func TestProtectionTokenFetchFailure(t *testing.T) {
	s := newPATServer()
	s.fetchErr = `{"status":"error","data":{"error":"http_status_401","error_description":"{\"error\":\"invalid_client\"}","details":null}}`
	c, _ := newPATClient(t, s, testCreds)
	err := getUserInfo(c)
	if e := asOxdError(t, err); HTTPStatus(err) != 401 || e.Command != CmdGetClientToken || s.attempts[CmdGetUserInfo] != 0 {
		t.Fatalf("%v", err)
	}
	s.mu.Lock()
	s.fetchErr = ""
	s.mu.Unlock()
	if err := getUserInfo(c); err != nil {
		t.Fatalf("failure was cached: %v", err)
	}
	// An answer without a token is a protocol error.
	c2 := New(envelopeTransport(func(string, []byte) string { return `{"status":"ok","data":{"access_token":null}}` }), Config{Protection: &testCreds})
	if err := getUserInfo(c2); !errors.Is(err, ErrProtocol) {
		t.Fatalf("%v", err)
	}
}

// TestProtectionTokenWaitHonoursContext: a caller that gives up while the
// token is being fetched gets ErrTimeout; the fetch completes for others.
func TestProtectionTokenWaitHonoursContext(t *testing.T) {
	s := newPATServer()
	s.gate = make(chan struct{})
	c, _ := newPATClient(t, s, testCreds)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.GetUserInfo(ctx, GetUserInfoParams{OxdID: "o"})
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}
	close(s.gate)
	if err := getUserInfo(c); err != nil || s.fetches != 1 {
		t.Fatalf("%v, %d fetches", err, s.fetches)
	}
}

type staticSource struct{ calls atomic.Int32 }

func (s *staticSource) ProtectionToken(context.Context) (Secret, error) {
	s.calls.Add(1)
	return "static", nil
}

func TestCustomTokenSource(t *testing.T) {
	var got string
	src := &staticSource{}
	c := New(funcTransport(func(_ context.Context, _ string, params, _ any) error {
		got = string(params.(*GetUserInfoParams).ProtectionAccessToken)
		return &Error{Code: CodeInvalidProtectionAccessToken}
	}), Config{TokenSource: src, Protection: &testCreds})
	err := getUserInfo(c)
	// No Invalidate method: the same token would come back, so no retry.
	if got != "static" || src.calls.Load() != 2 || !IsProtectionTokenError(err) {
		t.Fatalf("%q %d %v", got, src.calls.Load(), err)
	}
}

// TestProtectionTokensOverBothTransports: the same token logic over the
// fake socket server and the fake HTTPS extension (token in the header).
func TestProtectionTokensOverBothTransports(t *testing.T) {
	s := newPATServer()
	srv := newFakeServer(t, func(f fakeFrame) fakeReply { return fakeReply{Body: s.answer(f.Command, f.Params)} })
	https := newFakeHTTPS(t, func(command string, params json.RawMessage, token string, _ *http.Request) (int, string) {
		if token != "" {
			params = withKey(t, params, "protection_access_token", token)
		}
		return 200, s.answer(command, params)
	})
	transports := map[string]Transport{
		"socket": newTestSocket(t, srv.Addr(), SocketConfig{}),
		"https":  https.transport(t, HTTPSConfig{}),
	}
	for _, name := range []string{"socket", "https"} {
		t.Run(name, func(t *testing.T) {
			s.mu.Lock()
			s.fetches, s.valid, s.tokens, s.attempts = 0, "", nil, map[string]int{}
			s.mu.Unlock()
			c := New(transports[name], Config{Protection: &testCreds})
			for i := 0; i < 3; i++ {
				if err := getUserInfo(c); err != nil {
					t.Fatal(err)
				}
			}
			s.mu.Lock()
			s.valid = "pat-2" // oxd stops accepting pat-1
			s.mu.Unlock()
			if err := getUserInfo(c); err != nil {
				t.Fatal(err)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.fetches != 2 || !slices.Equal(s.tokens, []string{"pat-1", "pat-1", "pat-1", "pat-1", "pat-2"}) {
				t.Fatalf("%d fetches, tokens %v", s.fetches, s.tokens)
			}
		})
	}
}
