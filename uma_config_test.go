package oxd

import (
	"testing"

	"github.com/alexedwards/scs/v2"
	"github.com/stretchr/testify/assert"
)

// The issuer: configured, else the site's op_host from get_rp; a bad
// value is refused.
func TestUMAConfigureValidation(t *testing.T) {
	rg := newUMARig(t, umaRigOpts{noConfig: true})
	for _, c := range []UMAConfig{
		{Issuer: "as.example.com"},
		{Issuer: "https://as.example.com/?x=1"},
		{Issuer: "https://as.example.com/#f"},
		{Issuer: `https://as.example.com/"`},
		{Realm: `a"b`},
		{Realm: "a\r\nWarning: 1"},
		{Realm: "é"},
		{MaxGrants: -1},
		{ClaimsRedirectURL: "/claims"},
	} {
		_, err := New(rg.auth.client, scs.New(), Config{OxdID: rg.srv.OxdID, PostLogoutRedirectURI: rg.app.URL + "/logged-out", UMA: c})
		assert.ErrorContains(t, err, "Config.UMA", "%+v", c)
	}
	rg.protect("GET /x", "s")
	rg.register()
	f := parseChallenge(t, rg.do("GET", "/x", nil).header.Get("WWW-Authenticate"))
	assert.Equal(t, rg.srv.OP.Issuer(), f["as_uri"], "from get_rp op_host")
}
