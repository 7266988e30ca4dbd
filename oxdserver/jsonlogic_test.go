package oxdserver

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidScopeExpression(t *testing.T) {
	data := []string{"a", "b", "c"}
	cases := []struct {
		rule string
		data []string
		ok   bool
	}{
		{`{"and":[{"or":[{"var":0},{"var":1}]},{"var":2}]}`, data, true}, // the 3.1.4 documentation's example
		{`{"var":0}`, data, true},
		{`{"var":[1, null]}`, data, true},
		{`{"!":{"var":0}}`, data, true},
		{`{"in":["a",{"var":"x"}]}`, data, true},
		{`{"if":[{"var":0},true,false]}`, data, true},
		{`{"var":3}`, data, false},   // out of range
		{`{"var":-1}`, data, false},  // negative
		{`{"var":0.5}`, data, false}, // not an index
		{`{"var":[]}`, data, false},
		{`{"xor":[1,2]}`, data, false},                        // unknown operator
		{`{"and":[{"var":0}],"or":[{"var":1}]}`, data, false}, // two operators in one object
		{`{}`, data, false},
		{`"and"`, data, false}, // not an object
		{`[{"var":0}]`, data, false},
		{`{"var":0}`, nil, false}, // no data
		{`{"var":0}`, []string{""}, false},
		{`{"var":0} {"var":1}`, data, false}, // trailing data
		{`{"and":[`, data, false},
		{`null`, data, false},
	}
	for _, tc := range cases {
		if got := validScopeExpression(json.RawMessage(tc.rule), tc.data); got != tc.ok {
			t.Errorf("validScopeExpression(%s, %v) = %v, want %v", tc.rule, tc.data, got, tc.ok)
		}
	}
	deep := strings.Repeat(`{"!":`, 100) + `{"var":0}` + strings.Repeat(`}`, 100)
	if validScopeExpression(json.RawMessage(deep), data) {
		t.Error("a deeply nested expression must be refused")
	}
}

func FuzzValidScopeExpression(f *testing.F) {
	f.Add(`{"and":[{"or":[{"var":0},{"var":1}]},{"var":2}]}`)
	f.Add(`{"var":[0,1]}`)
	f.Fuzz(func(t *testing.T, rule string) {
		_ = validScopeExpression(json.RawMessage(rule), []string{"a", "b"})
	})
}
