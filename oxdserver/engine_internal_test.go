package oxdserver

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/oxdclient"
)

func TestCommonFieldsOf(t *testing.T) {
	get := commonFieldsOf[oxdclient.GetAuthorizationURLParams]()
	require.NotNil(t, get, "the params of get_authorization_url hold oxd_id and protection_access_token")
	var p oxdclient.GetAuthorizationURLParams
	require.NoError(t, json.Unmarshal([]byte(`{"OXD_ID":"a","oxd_id":"b","protection_access_token":"t"}`), &p))
	assert.Equal(t, commonParams{OxdID: "b", PAT: "t"}, get(&p))

	type embedded struct {
		*oxdclient.Protection
		OxdID string `json:"oxd_id"`
	}
	getE := commonFieldsOf[embedded]()
	require.NotNil(t, getE)
	assert.Equal(t, commonParams{OxdID: "x"}, getE(&embedded{OxdID: "x"}))

	// Not derivable: the parameters are decoded a second time.
	type noPAT struct {
		OxdID string `json:"oxd_id"`
	}
	assert.Nil(t, commonFieldsOf[noPAT]())
	type intID struct {
		OxdID int `json:"oxd_id"`
		oxdclient.Protection
	}
	assert.Nil(t, commonFieldsOf[intID]())
	type twice struct {
		A string `json:"oxd_id"`
		B string `json:"OXD_ID"`
		oxdclient.Protection
	}
	assert.Nil(t, commonFieldsOf[twice]())
	assert.Nil(t, commonFieldsOf[map[string]any]())
}
