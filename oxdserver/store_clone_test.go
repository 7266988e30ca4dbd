package oxdserver

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oxdgo/oxd/internal/clientauth"
)

// fillValue sets every field of v (recursively) to a non-zero value, with
// slices of two elements, so that a copy that forgets a field or shares a
// backing array is noticed.
func fillValue(t *testing.T, v reflect.Value, path string, n *int) {
	t.Helper()
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(*n))
	case reflect.Struct:
		for i := range v.NumField() {
			fillValue(t, v.Field(i), path+"."+v.Type().Field(i).Name, n)
		}
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[json.RawMessage]() {
			v.SetBytes(fmt.Appendf(nil, `{"k%d":1}`, *n))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fillValue(t, s.Index(i), fmt.Sprintf("%s[%d]", path, i), n)
		}
		v.Set(s)
	case reflect.Pointer:
		if v.Type() != reflect.TypeFor[*clientauth.KeySet]() {
			t.Fatalf("%s: pointer type %s not handled by the test (and maybe not by clone)", path, v.Type())
		}
		ks, err := clientauth.GenerateKeySet("ES256", time.Now())
		require.NoError(t, err)
		v.Set(reflect.ValueOf(ks))
	default:
		t.Fatalf("%s: kind %s not handled by the test (and maybe not by clone)", path, v.Kind())
	}
}

// assertDetached fails when a and b share the backing array of a slice
// (or a map) anywhere.
func assertDetached(t *testing.T, a, b reflect.Value, path string) {
	t.Helper()
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			assertDetached(t, a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name)
		}
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			t.Errorf("%s shares its backing array", path)
		}
		if a.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := range a.Len() {
			assertDetached(t, a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map, reflect.Pointer:
		if !a.IsNil() && a.Pointer() == b.Pointer() {
			t.Errorf("%s is shared", path)
		}
	}
}

func TestSiteCloneCoversEveryField(t *testing.T) {
	var s Site
	n := 0
	fillValue(t, reflect.ValueOf(&s).Elem(), "Site", &n)
	c := s.clone()
	assert.Equal(t, &s, c)
	assertDetached(t, reflect.ValueOf(s), reflect.ValueOf(*c), "Site")

	// nil stays nil, empty stays empty.
	var empty Site
	empty.Scope = []string{}
	empty.UMAResources = []UMAResource{{}}
	ec := empty.clone()
	assert.Equal(t, &empty, ec)
	assert.Nil(t, ec.RedirectURIs)
	assert.NotNil(t, ec.Scope)
}

// TestMemoryStoreSitesAreDetached mutates every slice and nested value of
// a site after putting it and of the sites the store returns: the store
// must not see any of it.
func TestMemoryStoreSitesAreDetached(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryStore()
	var s Site
	n := 0
	fillValue(t, reflect.ValueOf(&s).Elem(), "Site", &n)
	require.NoError(t, m.PutSite(ctx, &s))
	want, err := m.GetSite(ctx, s.OxdID)
	require.NoError(t, err)
	wantJSON, err := json.Marshal(want)
	require.NoError(t, err)

	mutate := func(x *Site) {
		x.ClientSecret = "mutated"
		x.RedirectURIs[0] = "mutated"
		x.Scope = append(x.Scope[:1], "appended")
		x.Contacts[1] = "mutated"
		x.UMAResources[0].Path = "/mutated"
		x.UMAResources[0].Scopes[0] = "mutated"
		x.UMAResources[1].HTTPMethods[1] = "mutated"
		x.UMAResources[1].TicketScopes[0] = "mutated"
		x.UMAResources[0].ScopeExpressions[0][1] = 'X'
		x.UMAResources = append(x.UMAResources[:1], UMAResource{ID: "new"})
	}
	mutate(&s) // the caller's site after PutSite
	got, err := m.GetSite(ctx, s.OxdID)
	require.NoError(t, err)
	mutate(got) // a site returned by GetSite
	list, err := m.ListSites(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	mutate(list[0]) // a site returned by ListSites

	again, err := m.GetSite(ctx, want.OxdID)
	require.NoError(t, err)
	assert.Equal(t, want, again)
	againJSON, err := json.Marshal(again)
	require.NoError(t, err)
	assert.JSONEq(t, string(wantJSON), string(againJSON))
}

// TestMemoryStoreKeepsJSONSemantics: a site reads back as its JSON
// encoding decodes (empty lists dropped, raw JSON compacted), as before
// sites were kept decoded.
func TestMemoryStoreKeepsJSONSemantics(t *testing.T) {
	ctx := context.Background()
	m := NewMemoryStore()
	s := &Site{OxdID: "a", Scope: []string{}, UMAResources: []UMAResource{{ID: "r", HTTPMethods: []string{},
		ScopeExpressions: []json.RawMessage{json.RawMessage(`{ "and" : [ "a" ] }`)}}}}
	require.NoError(t, m.PutSite(ctx, s))
	got, err := m.GetSite(ctx, "a")
	require.NoError(t, err)
	assert.Nil(t, got.Scope)
	assert.NotNil(t, got.UMAResources[0].HTTPMethods) // no omitempty: [] stays []
	assert.Nil(t, got.UMAResources[0].Scopes)
	assert.Equal(t, `{"and":["a"]}`, string(got.UMAResources[0].ScopeExpressions[0]))

	bad := &Site{OxdID: "b", UMAResources: []UMAResource{{ScopeExpressions: []json.RawMessage{json.RawMessage(`{`)}}}}
	require.Error(t, m.PutSite(ctx, bad))
	_, err = m.GetSite(ctx, "b")
	require.ErrorIs(t, err, ErrNotFound)
}
