package load

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oxdgo/oxd/e2e/harness"
)

// NewTransport is the HTTP transport shared by many simulated browsers.
func NewTransport() *http.Transport {
	return &http.Transport{MaxIdleConns: 2048, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 30 * time.Second}
}

// Browser is one user's browser: a cookie jar, no automatic redirects.
type Browser struct {
	HC   *http.Client
	Base string // the load balancer's URL
	User string
	// Driver fills in the OP's login pages; nil: the certified OP's
	// (harness.DriverFor(op).LoginHTTP).
	Driver LoginDriver
}

// NewBrowser returns a browser for user on base.
func NewBrowser(tr http.RoundTripper, base, user string, timeout time.Duration) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{Base: base, User: user, HC: &http.Client{Transport: tr, Jar: jar, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Response is what the tests look at.
type Response struct {
	Status   int
	Location string
	Replica  string
	Body     string
	Elapsed  time.Duration
}

// Get requests path (or an absolute URL) with the given headers ("Key",
// "value", ...); pin >= 0 pins the request to that replica.
func (b *Browser) Get(ctx context.Context, target string, pin int, hdr ...string) (*Response, error) {
	if strings.HasPrefix(target, "/") {
		target = b.Base + target
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/html")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if pin >= 0 {
		req.Header.Set(PinHeader, fmt.Sprint(pin))
	}
	start := time.Now()
	resp, err := b.HC.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return &Response{Status: resp.StatusCode, Location: resp.Header.Get("Location"), Replica: resp.Header.Get("X-Replica"),
		Body: string(body), Elapsed: time.Since(start)}, nil
}

// LoginResult tells where the login started and finished.
type LoginResult struct {
	StartReplica, FinishReplica string
	Elapsed                     time.Duration
}

// Login signs the user in: a guarded page on replica startPin redirects to
// the OP, the OP's login form is filled in, the callback goes to replica
// finishPin, and the guarded page then answers 200 for this user.
func (b *Browser) Login(ctx context.Context, op string, startPin, finishPin int) (*LoginResult, error) {
	t0 := time.Now()
	cb, res, err := b.LoginBegin(ctx, op, startPin)
	if err != nil {
		return nil, err
	}
	r, err := b.LoginFinish(ctx, cb, finishPin)
	if err != nil {
		return nil, err
	}
	res.FinishReplica = r.Replica
	res.Elapsed = time.Since(t0)
	return res, nil
}

// LoginBegin visits a guarded page on replica startPin and drives the OP's
// login form; it returns the callback URL the OP redirects to, not yet
// visited.
func (b *Browser) LoginBegin(ctx context.Context, op string, startPin int) (string, *LoginResult, error) {
	r, err := b.Get(ctx, "/private/"+b.User, startPin)
	if err != nil {
		return "", nil, fmt.Errorf("first visit: %w", err)
	}
	if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, op+"/") {
		return "", nil, fmt.Errorf("first visit: HTTP %d to %q: %.200s", r.Status, r.Location, r.Body)
	}
	res := &LoginResult{StartReplica: r.Replica}
	drive := b.Driver
	if drive == nil {
		drive = harness.DriverFor(op).LoginHTTP
	}
	cb, err := drive(ctx, b.HC, r.Location, b.User, "pw-"+b.User)
	if err != nil {
		return "", nil, fmt.Errorf("login form: %w", err)
	}
	if !strings.HasPrefix(cb.String(), b.Base+"/callback?") {
		return "", nil, fmt.Errorf("OP redirected to %s", cb.Redacted())
	}
	return cb.String(), res, nil
}

// LoginFinish visits the callback on replica finishPin and then the guarded
// page, which must answer 200 for this user. It returns the callback's
// answer.
func (b *Browser) LoginFinish(ctx context.Context, callback string, finishPin int) (*Response, error) {
	path := "/private/" + b.User
	cbr, err := b.Get(ctx, callback, finishPin)
	if err != nil {
		return nil, fmt.Errorf("callback: %w", err)
	}
	if cbr.Status != http.StatusSeeOther || cbr.Location != path {
		return cbr, fmt.Errorf("callback: HTTP %d to %q: %.200s", cbr.Status, cbr.Location, cbr.Body)
	}
	r, err := b.Get(ctx, path, -1)
	if err != nil {
		return cbr, err
	}
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "sub="+b.User+" ") {
		return cbr, fmt.Errorf("after login: HTTP %d: %.200s", r.Status, r.Body)
	}
	return cbr, nil
}

// Latencies collects durations.
type Latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

// Add records d.
func (l *Latencies) Add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// N is the count.
func (l *Latencies) N() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

// Quantile returns the q-quantile (0..1), 0 when empty.
func (l *Latencies) Quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	i := int(q * float64(len(s)-1))
	return s[i]
}

// Max is the largest duration.
func (l *Latencies) Max() time.Duration { return l.Quantile(1) }

// Ms is d in milliseconds, rounded to 0.01.
func Ms(d time.Duration) float64 { return float64(d.Microseconds()/10) / 100 }

// Record appends one JSON line to path and returns it.
func Record(path string, fields map[string]any) (string, error) {
	fields["time"] = time.Now().UTC().Format(time.RFC3339)
	b, err := json.Marshal(fields)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, err = f.Write(append(b, '\n'))
	return string(b), err
}
