package oxdclient

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// flatProbe exercises every kind the fast decoder handles.
type flatProbe struct {
	S   string `json:"s"`
	Sec Secret `json:"sec,omitempty"`
	N   int64  `json:"n"`
	I   int    `json:"i"`
	B   bool   `json:"b"`
	U   string `json:"www-authenticate_header"`
}

// flatTargets are the types the differential tests decode into: every
// answer type (eligible or not) and the probe.
func flatTargets() []reflect.Type {
	out := []reflect.Type{reflect.TypeFor[flatProbe]()}
	for _, ty := range commandTypes {
		if !slices.Contains(out, ty[1]) {
			out = append(out, ty[1])
		}
	}
	slices.SortFunc(out[1:], func(a, b reflect.Type) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

func TestFlatEligibility(t *testing.T) {
	eligible := map[reflect.Type]bool{
		reflect.TypeFor[flatProbe]():                          true,
		reflect.TypeFor[GetAuthorizationURLResponse]():        true,
		reflect.TypeFor[TokenResponse]():                      true,
		reflect.TypeFor[SetupClientResponse]():                true,
		reflect.TypeFor[UMARSCheckAccessResponse]():           true,
		reflect.TypeFor[OxdIDResponse]():                      true,
		reflect.TypeFor[UMARPGetRPTResponse]():                false, // custom UnmarshalJSON
		reflect.TypeFor[GetTokensByCodeResponse]():            false, // claims map
		reflect.TypeFor[IntrospectAccessTokenResponse]():      false, // StringList
		reflect.TypeFor[GetRPResponse]():                      false, // raw JSON
		reflect.TypeFor[Error]():                              false, // unexported tag "-"
		reflect.TypeFor[UMARPGetClaimsGatheringURLResponse](): true,
	}
	for ty, want := range eligible {
		if got := flatInfo(ty) != nil; got != want {
			t.Errorf("%v: eligible %v, want %v", ty, got, want)
		}
	}
}

// checkFlatAgainstStd decodes in with both decoders; whenever the fast one
// accepts, encoding/json must accept and agree exactly.
func checkFlatAgainstStd(t *testing.T, in []byte, ty reflect.Type) bool {
	fast := reflect.New(ty)
	if !decodeFlat(in, fast.Interface()) {
		return false
	}
	std := reflect.New(ty)
	if err := json.Unmarshal(in, std.Interface()); err != nil {
		t.Fatalf("fast decoder accepted what encoding/json rejects (%v): %q into %v", err, in, ty)
	}
	if !reflect.DeepEqual(fast.Interface(), std.Interface()) {
		t.Fatalf("decoders disagree on %q into %v:\nfast %+v\n std %+v", in, ty, fast.Elem().Interface(), std.Elem().Interface())
	}
	return true
}

func TestFlatDecodeCases(t *testing.T) {
	accept := []string{
		`{}`, ` { } `, `{"s":"a","n":-12,"i":0,"b":true,"sec":"x"}`,
		`{"s":null,"sec":null,"n":null,"b":null}`,
		`{"s":"q\"u\\o\/te\n\t\r\b\f","unknown":"x","other":12,"flag":false,"nil":null}`,
		`{"s":"a","s":"b"}`, "{\n\"n\" : 9223372036854775807 ,\r\n\"b\":false\t}",
		`{"www-authenticate_header":"UMA realm=\"rs\",as_uri=\"https://as\",ticket=\"t\""}`,
		`{"s":"` + "\x7f" + `"}`,
	}
	for _, in := range accept {
		if !checkFlatAgainstStd(t, []byte(in), reflect.TypeFor[flatProbe]()) {
			t.Errorf("declined %q", in)
		}
	}
	decline := []string{
		``, `null`, `[]`, `{`, `{"s":"a"`, `{"s":"a",}`, `{"s":"a"}x`, `{"s":"a"} {}`,
		`{"S":"a"}`, `{"N":1}`, `{"s":"\u00e9"}`, `{"s":"é"}`, `{"s":"a` + "\n" + `"}`, `{"s":"\x"}`,
		`{"n":1.5}`, `{"n":1e3}`, `{"n":012}`, `{"n":-}`, `{"n":9223372036854775808}`, `{"i":"1"}`,
		`{"s":1}`, `{"b":"true"}`, `{"sec":1}`, `{"s":{}}`, `{"x":[1]}`, `{"x":{"s":"a"}}`,
		`{"b":tru}`, `{"s":nul}`, `{"s" "a"}`, `{s:"a"}`, `{"k\u0073":"a"}`, "\ufeff{}",
	}
	for _, in := range decline {
		if decodeFlat([]byte(in), &flatProbe{}) {
			t.Errorf("accepted %q", in)
		}
	}
	if decodeFlat([]byte(`{}`), nil) || decodeFlat([]byte(`{}`), flatProbe{}) || decodeFlat([]byte(`{}`), (*flatProbe)(nil)) {
		t.Error("accepted a non-pointer or nil target")
	}
}

// TestFlatDecodeFixtures: every success fixture decodes identically.
func TestFlatDecodeFixtures(t *testing.T) {
	n := 0
	for _, seed := range envelopeSeeds(t) {
		var env struct{ Data json.RawMessage }
		if json.Unmarshal(seed, &env) != nil || len(env.Data) == 0 {
			continue
		}
		for _, ty := range flatTargets() {
			if checkFlatAgainstStd(t, env.Data, ty) {
				n++
			}
		}
	}
	if n < 10 {
		t.Fatalf("fast path used for only %d fixture decodes", n)
	}
}

// FuzzFlatDecode is a differential fuzz test: the fast decoder either
// declines or produces exactly what encoding/json produces.
func FuzzFlatDecode(f *testing.F) {
	for _, seed := range envelopeSeeds(f) {
		var env struct{ Data json.RawMessage }
		if json.Unmarshal(seed, &env) == nil && len(env.Data) > 0 {
			f.Add(uint8(0), []byte(env.Data))
		}
	}
	f.Add(uint8(0), []byte(`{"s":"a\"b","n":-1,"b":false,"sec":null,"x":null}`))
	targets := flatTargets()
	f.Fuzz(func(t *testing.T, sel uint8, in []byte) {
		checkFlatAgainstStd(t, in, targets[int(sel)%len(targets)])
	})
}
