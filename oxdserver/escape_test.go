package oxdserver_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdtest"
)

// TestAnswersNotHTMLEscaped (server hardening, defect 9): the socket and
// HTTPS answers write '&', '<' and '>' raw, as oxd 3.1.4 (Jackson) does,
// not Go's HTML-safe \u0026, \u003c, \u003e.
func TestAnswersNotHTMLEscaped(t *testing.T) {
	srv := oxdtest.NewServer(t, oxdtest.WithEngineConfig(oxdserver.Config{}))
	l := startListeners(t, srv.Engine, nil)
	tok := clientToken(t, srv, srv.Setup.ClientID, srv.Setup.ClientSecret, "oxd")
	params := fmt.Sprintf(`{"oxd_id":%q,"protection_access_token":%q,"custom_parameters":{"x":"<a&b>"}}`, srv.OxdID, tok)

	// Socket: the raw frame.
	c, err := net.Dial("tcp", l.sockAddr)
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req := `{"command":"get_authorization_url","params":` + params + `}`
	_, err = fmt.Fprintf(c, "%04d%s", len(req), req)
	require.NoError(t, err)
	br := bufio.NewReader(c)
	prefix := make([]byte, 4)
	_, err = io.ReadFull(br, prefix)
	require.NoError(t, err)
	n, err := strconv.Atoi(string(prefix))
	require.NoError(t, err)
	body := make([]byte, n)
	_, err = io.ReadFull(br, body)
	require.NoError(t, err)
	checkRaw(t, "socket", string(body))

	// HTTPS: the raw body.
	hreq, err := http.NewRequest(http.MethodPost, l.https.URL+"/get-authorization-url", strings.NewReader(params))
	require.NoError(t, err)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+tok)
	resp, err := l.https.Client().Do(hreq)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	checkRaw(t, "https", string(b))
}

func checkRaw(t *testing.T, via, body string) {
	t.Helper()
	assert.True(t, strings.HasPrefix(body, `{"status":"ok","data":{"authorization_url":"`), "%s: %s", via, body)
	assert.Contains(t, body, "&state=", via)
	for _, esc := range []string{`\u0026`, `\u003c`, `\u003e`} {
		assert.NotContains(t, body, esc, "%s answer is HTML-escaped: %s", via, body)
	}
}
