package scopeexpr

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var abc = []string{"a", "b", "c"}

func TestValidateAccepts(t *testing.T) {
	for _, rule := range []string{
		`{"and":[{"or":[{"var":0},{"var":1}]},{"var":2}]}`, // the 3.1.4 documentation's example
		`{"var":0}`,
		`{"var":2}`,
		`{"var":[0]}`,
		`{"var":[1, null]}`,
		`{"var":["2", false]}`,
		`{"var":"0"}`,
		`{"var":2.0}`,
		`{"!":{"var":0}}`,
		`{"!!":[{"var":1}]}`,
		`{"if":[{"var":0},true,false]}`,
		`{"or":[{"var":[0]},{"and":[{"var":1},{"!":{"var":2}}]}]}`,
		`{"in":["a",{"merge":[{"var":0}]}]}`,
		` { "and" : [ {"var": 0}, true ] } `,
		"{\"and\":[{\"var\":0},true]}\n",
		`{"==":[1,1]}`, // a rule need not mention a var
		strings.Repeat(`{"!":`, MaxDepth) + `true` + strings.Repeat(`}`, MaxDepth),
	} {
		if err := Validate(json.RawMessage(rule), abc); err != nil {
			t.Errorf("Validate(%s) = %v, want nil", rule, err)
		}
	}
}

func TestValidateRefuses(t *testing.T) {
	deep := func(n int) string { return strings.Repeat(`{"!":`, n) + `true` + strings.Repeat(`}`, n) }
	cases := []struct {
		name, rule string
		data       []string
		want       error
	}{
		{"no data", `{"var":0}`, nil, ErrNoData},
		{"empty data", `{"var":0}`, []string{}, ErrNoData},
		{"empty scope", `{"var":0}`, []string{""}, ErrBadScope},
		{"scope with a space", `{"var":0}`, []string{"a b"}, ErrBadScope},
		{"scope with a quote", `{"var":0}`, []string{`a"`}, ErrBadScope},
		{"scope with a backslash", `{"var":0}`, []string{`a\`}, ErrBadScope},
		{"scope with a control character", `{"var":0}`, []string{"a\n"}, ErrBadScope},
		{"scope not ASCII", `{"var":0}`, []string{"é"}, ErrBadScope},
		{"scope listed twice", `{"var":0}`, []string{"a", "a"}, ErrDuplicateScope},
		{"scope listed twice, apart", `{"var":0}`, []string{"a", "b", "a"}, ErrDuplicateScope},

		{"empty rule", ``, abc, ErrNotJSON},
		{"truncated", `{"and":[`, abc, ErrNotJSON},
		{"trailing object", `{"var":0} {"var":1}`, abc, ErrNotJSON},
		{"trailing bracket", `{"var":0}]`, abc, ErrNotJSON},
		{"trailing brace", `{"var":0}}`, abc, ErrNotJSON},
		{"trailing garbage", `{"var":0} x`, abc, ErrNotJSON},
		{"too large", `{"cat":["` + strings.Repeat("x", MaxRuleSize) + `"]}`, abc, ErrTooLarge},

		{"null", `null`, abc, ErrNotOperation},
		{"string", `"and"`, abc, ErrNotOperation},
		{"number", `1`, abc, ErrNotOperation},
		{"boolean", `true`, abc, ErrNotOperation},
		{"array", `[{"var":0}]`, abc, ErrNotOperation},
		{"empty array", `[]`, abc, ErrNotOperation},

		{"empty object", `{}`, abc, ErrOperator},
		{"two operators", `{"and":[{"var":0}],"or":[{"var":1}]}`, abc, ErrOperator},
		{"unknown operator", `{"xor":[1,2]}`, abc, ErrOperator},
		{"unknown operator inside", `{"and":[{"var":0},{"nand":[1]}]}`, abc, ErrOperator},
		{"operator case", `{"AND":[{"var":0}]}`, abc, ErrOperator},
		{"empty object inside", `{"!":{}}`, abc, ErrOperator},

		{"deep ops", deep(MaxDepth + 1), abc, ErrTooDeep},
		{"very deep ops", deep(100), abc, ErrTooDeep},
		{"deep arrays", `{"and":` + strings.Repeat(`[`, MaxDepth+1) + strings.Repeat(`]`, MaxDepth+1) + `}`, abc, ErrTooDeep},
		{"deep var", strings.Repeat(`{"!":`, MaxDepth-1) + `{"var":[0]}` + strings.Repeat(`}`, MaxDepth-1), abc, ErrTooDeep},

		{"var out of range", `{"var":3}`, abc, ErrVar},
		{"var negative", `{"var":-1}`, abc, ErrVar},
		{"var fraction", `{"var":0.5}`, abc, ErrVar},
		{"var fraction 1.5", `{"var":1.5}`, abc, ErrVar},
		{"var huge", `{"var":1e300}`, abc, ErrVar},
		{"var overflow", `{"var":1e400}`, abc, ErrVar},
		{"var empty string", `{"var":""}`, abc, ErrVar},
		{"var null", `{"var":null}`, abc, ErrVar},
		{"var true", `{"var":true}`, abc, ErrVar},
		{"var empty list", `{"var":[]}`, abc, ErrVar},
		{"var list of empty string", `{"var":[""]}`, abc, ErrVar},
		{"var list of null", `{"var":[null]}`, abc, ErrVar},
		{"var three args", `{"var":[0,1,2]}`, abc, ErrVar},
		{"var nested list", `{"var":[[0]]}`, abc, ErrVar},
		{"var computed", `{"var":{"cat":[""]}}`, abc, ErrVar},
		{"var computed in list", `{"var":[{"cat":["0"]}]}`, abc, ErrVar},
		{"var computed default", `{"var":[0,{"var":""}]}`, abc, ErrVar},
		{"var list default", `{"var":[0,[1]]}`, abc, ErrVar},
		{"var path", `{"in":["a",{"var":"x"}]}`, abc, ErrVar},
		{"var length", `{"var":"length"}`, abc, ErrVar},
		{"var dotted", `{"var":"0.length"}`, abc, ErrVar},
		{"var string out of range", `{"var":"3"}`, abc, ErrVar},
		{"var string negative", `{"var":"-1"}`, abc, ErrVar},
		{"var string spaced", `{"var":" 1"}`, abc, ErrVar},
		{"var string long", `{"var":"00000000000000000001"}`, abc, ErrVar},
		{"var inside", `{"and":[{"var":0},{"var":7}]}`, abc, ErrVar},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Parse(json.RawMessage(tc.rule), tc.data)
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%.80s, %q) = %v, want %v", tc.rule, tc.data, err, tc.want)
			}
			if e != nil {
				t.Fatal("an expression with an error")
			}
			if Validate(json.RawMessage(tc.rule), tc.data) == nil {
				t.Fatal("Validate accepts what Parse refuses")
			}
		})
	}
}

func TestParseCompactsAndCopies(t *testing.T) {
	data := []string{"a", "b"}
	e, err := Parse(json.RawMessage(" { \"and\" : [ {\"var\": 0}, {\"var\":1} ] }\n"), data)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(e.Rule); got != `{"and":[{"var":0},{"var":1}]}` {
		t.Errorf("rule = %s", got)
	}
	data[0] = "changed"
	if e.Data[0] != "a" {
		t.Error("the expression shares the caller's data")
	}
}

func TestCanonical(t *testing.T) {
	a := Canonical(json.RawMessage(`{"if":[{"var":0}, 1.50, {"b":1,"a":2}]}`), []string{"x", "y"})
	b := Canonical(json.RawMessage(`{ "if" : [ {"var":0},1.50,{"a":2,"b":1} ] }`), []string{"x", "y"})
	if a != b {
		t.Errorf("same rule, two forms: %q vs %q", a, b)
	}
	if want := `{"if":[{"var":0},1.50,{"a":2,"b":1}]} data=x y`; a != want {
		t.Errorf("Canonical = %q, want %q (numbers kept as written)", a, want)
	}
	if c := Canonical(json.RawMessage(`{"var":0}`), []string{"y", "x"}); c == Canonical(json.RawMessage(`{"var":0}`), []string{"x", "y"}) {
		t.Error("the order of data matters (vars index it)")
	}
	if c := Canonical(json.RawMessage(`{"var":`), nil); c != `invalid:{"var":` {
		t.Errorf("Canonical(invalid) = %q", c)
	}
}

func TestValidScope(t *testing.T) {
	for _, s := range []string{"a", "openid", "https://api.example/photos:read", "!#$%&'()*+,-./:;<=>?@[]^_`{|}~"} {
		if !ValidScope(s) {
			t.Errorf("ValidScope(%q) = false", s)
		}
	}
	for _, s := range []string{"", " ", "a b", "a\tb", `a"b`, `a\b`, "a\x7f", "a\x00", "é"} {
		if ValidScope(s) {
			t.Errorf("ValidScope(%q) = true", s)
		}
	}
}

// FuzzValidate: Validate never panics, and whatever it accepts is an
// operation object whose compact form is accepted again unchanged.
func FuzzValidate(f *testing.F) {
	f.Add(`{"and":[{"or":[{"var":0},{"var":1}]},{"var":2}]}`)
	f.Add(`{"var":[0,1]}`)
	f.Add(`{"var":"1"}`)
	f.Add(`{"var":""}`)
	f.Add(`{"!":{"var":[1,null]}}`)
	f.Fuzz(func(t *testing.T, rule string) {
		e, err := Parse(json.RawMessage(rule), []string{"a", "b"})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		e2, err := Parse(e.Rule, e.Data)
		if err != nil || string(e2.Rule) != string(e.Rule) {
			t.Fatalf("compact form %s refused or changed: %v", e.Rule, err)
		}
		if Canonical(json.RawMessage(rule), e.Data) != Canonical(e.Rule, e.Data) {
			t.Fatal("compacting changed the canonical form")
		}
	})
}
