package oxdserver_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
	"github.com/oxdgo/oxd/oxdserver"
	"github.com/oxdgo/oxd/oxdserver/internal/storetest"
	"github.com/oxdgo/oxd/oxdtest"
)

func TestMemoryStoreContract(t *testing.T) { storetest.Contract(t, oxdserver.NewMemoryStore()) }

func TestFileStoreContract(t *testing.T) {
	s, err := oxdserver.NewFileStore(filepath.Join(t.TempDir(), "sites.json"))
	require.NoError(t, err)
	storetest.Contract(t, s)
}

func TestFileStoreSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oxd", "sites.json")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	op := oxdtest.NewTestOP(t, oxdtest.OPConfig{})

	store, err := oxdserver.NewFileStore(path)
	require.NoError(t, err)
	e1, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true, Store: store})
	require.NoError(t, err)
	c1 := oxdclient.New(e1, oxdclient.Config{})
	reg, err := c1.RegisterSite(testCtx(t), oxdclient.RegisterSiteParams{SiteParams: oxdclient.SiteParams{
		OPHost: op.Issuer(), AuthorizationRedirectURI: "https://rp.example/cb", ClientName: "survivor"}})
	require.NoError(t, err)
	require.NoError(t, e1.Close())

	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary files left behind")

	// A new process: the site is there and usable for a full login.
	store2, err := oxdserver.NewFileStore(path)
	require.NoError(t, err)
	e2, err := oxdserver.New(oxdserver.Config{InsecureAllowLoopbackHTTP: true, Store: store2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e2.Close() })
	c2 := oxdclient.New(e2, oxdclient.Config{})
	au, err := c2.GetAuthorizationURL(testCtx(t), oxdclient.GetAuthorizationURLParams{OxdID: reg.OxdID})
	require.NoError(t, err)
	cb, err := op.Login(testCtx(t), au.AuthorizationURL, "bob", "bob-password")
	require.NoError(t, err)
	tok, err := c2.GetTokensByCode(testCtx(t), oxdclient.GetTokensByCodeParams{OxdID: reg.OxdID, Code: oxdclient.Secret(cb.Query().Get("code")), State: cb.Query().Get("state")})
	require.NoError(t, err)
	assert.Equal(t, "bob", tok.IDTokenClaims.String("sub"))
}

func TestFileStoreRejectsCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sites.json")
	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	_, err := oxdserver.NewFileStore(path)
	require.Error(t, err)
	require.NoError(t, os.WriteFile(path, []byte(`{"version":1,"sites":{"a":{"oxd_id":"b"}}}`), 0o600))
	_, err = oxdserver.NewFileStore(path)
	require.Error(t, err)
}
