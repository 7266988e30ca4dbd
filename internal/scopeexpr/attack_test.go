package scopeexpr

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestDuplicateKeysRefused: an object that names a key twice reads
// differently in different JSON parsers (Go keeps the last value, others
// the first or refuse), so the rule the validator checked need not be the
// rule the authorization server evaluates: {"var":"", "var":0} passes a
// last-wins check while a first-wins evaluator sees {"var":""}, the whole
// data list. Such rules are refused, at any depth.
func TestDuplicateKeysRefused(t *testing.T) {
	for _, rule := range []string{
		`{"var":"","var":0}`,
		`{"var":0,"var":0}`,
		`{"or":[{"var":""}],"or":[{"var":0}]}`,
		`{"and":[{"!":{"var":[]},"!":{"var":1}}]}`,
		`{"and":[{"var":0},{"if":[{"var":"x","var":1},true,false]}]}`,
		`{"var":[0, {"a":1}]}`, // the default is not a literal (and a nested object)
		`{"in":["a",{"merge":[{"var":0}]}],"in":["b",[]]}`,
		`{"var":"\u0000","var":0}`,
		`{"v\u0061r":"","var":0}`, // the same key, escaped
	} {
		err := Validate(json.RawMessage(rule), abc)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%s) = %v, want a refusal", rule, err)
		}
	}
	// Equal keys in different objects are fine.
	for _, rule := range []string{`{"and":[{"var":0},{"var":1}]}`, `{"var":[0,{"x":1}]}`} {
		err := Validate(json.RawMessage(rule), abc)
		if rule == `{"var":[0,{"x":1}]}` {
			if err == nil {
				t.Errorf("non-literal default accepted")
			}
			continue
		}
		if err != nil {
			t.Errorf("Validate(%s) = %v", rule, err)
		}
	}
}

// TestCanonicalDuplicateKeys: two rules that differ only in a duplicate
// key never have the same canonical form as a rule without it.
func TestCanonicalDuplicateKeys(t *testing.T) {
	a := Canonical(json.RawMessage(`{"var":0}`), abc)
	b := Canonical(json.RawMessage(`{"var":"","var":0}`), abc)
	if a == b {
		t.Fatalf("canonical forms equal: %s", a)
	}
}
