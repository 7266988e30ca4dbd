package devop

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLoginPageNamesDemoUsers: with the default accounts the login page
// lists them (newcomers sign in without reading code); with configured
// users it names none.
func TestLoginPageNamesDemoUsers(t *testing.T) {
	for _, custom := range []bool{false, true} {
		cfg := OPConfig{}
		if custom {
			cfg.Users = []User{{Username: "carol", Password: "carol-secret-pw", Subject: "carol"}}
		}
		op := newTestOP(t, cfg)
		c := register(t, op, defaultMeta())
		res, page := get(t, browser(t), authURL(op, c, authParams{scope: "openid", state: "s", challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}))
		require.Equal(t, http.StatusOK, res.StatusCode, page)
		require.Contains(t, page, `class="top"`, "the page has the demo's look")
		listed := strings.Contains(page, `id="demo-users"`)
		if custom {
			require.False(t, listed, "configured users are not listed")
			require.NotContains(t, page, "carol-secret-pw")
			continue
		}
		require.True(t, listed)
		for _, u := range DemoUsers {
			require.Contains(t, page, "<code>"+u.Username+"</code>")
		}
	}
}
