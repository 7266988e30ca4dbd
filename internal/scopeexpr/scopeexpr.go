// Package scopeexpr is the one validator of oxd UMA scope expressions,
// shared by the middleware (which checks what an application declares)
// and the engine (which checks what a client sends to uma_rs_protect).
//
// A scope expression is a JsonLogic rule over Data, the list of scopes:
//
//	{"rule": {"and":[{"or":[{"var":0},{"var":1}]},{"var":2}]},
//	 "data": ["view", "edit", "internal"]}
//
// The authorization server evaluates the rule with each var standing for
// "the scope at this index of Data is granted". oxd itself never evaluates
// it, so this package only validates; an expression is accepted when:
//
//   - Data is a non-empty list of distinct RFC 6749 scope tokens (a scope
//     listed twice would make two indexes name the same scope);
//   - the rule is one JSON value of at most MaxRuleSize bytes, an
//     operation object, nested at most MaxDepth objects and arrays deep;
//   - every object has exactly one key, a JsonLogic operator;
//   - every var names one element of Data by its index: {"var": n},
//     {"var": [n]} or {"var": [n, default]} with n an integer or a string
//     of decimal digits, 0 <= n < len(Data), and a literal default.
//
// The var rule is stricter than the 3.1.4 Java server, which only checks
// that the rule parses as a JsonLogic node. No oxd client needs the
// difference: the documented form indexes Data with integers. The forms
// refused are the ones that do not name a scope: {"var":""}, {"var":null}
// and {"var":[]} evaluate to the whole data list (truthy whenever Data is
// not empty, so such a rule grants whatever the RPT holds), a computed
// var ({"var":{"cat":...}}) can evaluate to the same, and a path that is
// not an index ({"var":"x"}, {"var":"length"}) names no scope and only
// evaluates to null, or in some evaluators to a property of the list.
package scopeexpr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// MaxDepth bounds the nesting of a rule: every object and every array
// counts as one level (the rule itself is level 0).
const MaxDepth = 32

// MaxRuleSize bounds the size of a rule in bytes.
const MaxRuleSize = 64 << 10

// ErrInvalid is wrapped by every error of Validate and Parse.
var ErrInvalid = errors.New("invalid scope expression")

// The reasons an expression is refused; each wraps ErrInvalid.
var (
	ErrNoData         = fmt.Errorf("%w: no data (scopes)", ErrInvalid)
	ErrBadScope       = fmt.Errorf("%w: data holds an invalid scope", ErrInvalid)
	ErrDuplicateScope = fmt.Errorf("%w: data lists a scope twice (vars index it)", ErrInvalid)
	ErrNotJSON        = fmt.Errorf("%w: rule is not JSON (one value)", ErrInvalid)
	ErrTooLarge       = fmt.Errorf("%w: rule too large", ErrInvalid)
	ErrNotOperation   = fmt.Errorf("%w: rule must be a JsonLogic operation object", ErrInvalid)
	ErrTooDeep        = fmt.Errorf("%w: rule nested too deeply", ErrInvalid)
	ErrOperator       = fmt.Errorf("%w: an operation object must hold exactly one known operator", ErrInvalid)
	ErrVar            = fmt.Errorf("%w: var does not index the data", ErrInvalid)
)

// operators are the operators of JsonLogic (jsonlogic.com/operations).
var operators = map[string]bool{
	"var": true, "missing": true, "missing_some": true, "if": true, "?:": true,
	"==": true, "===": true, "!=": true, "!==": true, "!": true, "!!": true,
	"or": true, "and": true, ">": true, ">=": true, "<": true, "<=": true,
	"max": true, "min": true, "+": true, "-": true, "*": true, "/": true, "%": true,
	"map": true, "reduce": true, "filter": true, "all": true, "none": true, "some": true,
	"merge": true, "in": true, "cat": true, "substr": true, "log": true,
}

// Expression is a validated scope expression.
type Expression struct {
	Rule json.RawMessage // compact JSON
	Data []string
}

// Validate reports why rule over data is not a usable scope expression,
// or nil. The error wraps ErrInvalid and one of the Err* reasons.
func Validate(rule json.RawMessage, data []string) error {
	_, err := Parse(rule, data)
	return err
}

// Parse validates rule over data (see Validate) and returns the
// expression with its rule in compact JSON and its own copy of data.
func Parse(rule json.RawMessage, data []string) (*Expression, error) {
	if len(data) == 0 {
		return nil, ErrNoData
	}
	seen := make(map[string]bool, len(data))
	for _, s := range data {
		if !ValidScope(s) {
			return nil, fmt.Errorf("%w: %q", ErrBadScope, s)
		}
		if seen[s] {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateScope, s)
		}
		seen[s] = true
	}
	if len(rule) > MaxRuleSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(rule), MaxRuleSize)
	}
	dec := json.NewDecoder(bytes.NewReader(rule))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data", ErrNotJSON)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, ErrNotOperation
	}
	if hasDuplicateKey(rule) {
		return nil, fmt.Errorf("%w: an object names a key twice", ErrOperator)
	}
	if err := check(v, len(data), 0); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, rule); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	return &Expression{Rule: buf.Bytes(), Data: append([]string(nil), data...)}, nil
}

// hasDuplicateKey reports whether an object of rule, a valid JSON value,
// names a key twice (after unescaping). Parsers differ on such objects
// (Go keeps the last value, others the first, or refuse them), so the rule
// checked here would not be the rule the authorization server evaluates.
func hasDuplicateKey(rule []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(rule))
	// One frame per open object or array; keys is nil for an array.
	type frame struct {
		keys      map[string]bool
		expectKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false // io.EOF; a syntax error is reported by Decode
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.keys != nil && top.expectKey {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return true
				}
				top.keys[k] = true
				top.expectKey = false
				continue
			}
		}
		if top != nil && top.keys != nil {
			top.expectKey = true // a value was read (or the object ends)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, expectKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].keys != nil {
				stack[len(stack)-1].expectKey = true
			}
		}
	}
}

func check(v any, nData, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("%w (at most %d levels)", ErrTooDeep, MaxDepth)
	}
	switch x := v.(type) {
	case map[string]any:
		if len(x) != 1 {
			return fmt.Errorf("%w: object with %d keys", ErrOperator, len(x))
		}
		for op, args := range x {
			if !operators[op] {
				return fmt.Errorf("%w: unknown operator %q", ErrOperator, op)
			}
			if op == "var" {
				return checkVar(args, nData, depth+1)
			}
			return check(args, nData, depth+1)
		}
	case []any:
		for _, a := range x {
			if err := check(a, nData, depth+1); err != nil {
				return err
			}
		}
	}
	return nil // a literal
}

// checkVar accepts {"var": n}, {"var": [n]} and {"var": [n, default]}
// with n an index into the data and a literal default.
func checkVar(args any, nData, depth int) error {
	if arr, ok := args.([]any); ok {
		if len(arr) == 0 || len(arr) > 2 {
			return fmt.Errorf("%w: var takes an index and an optional default", ErrVar)
		}
		if len(arr) == 2 {
			switch arr[1].(type) {
			case map[string]any, []any:
				return fmt.Errorf("%w: the default of a var must be a literal", ErrVar)
			}
		}
		args = arr[0]
		depth++
	}
	if depth > MaxDepth {
		return fmt.Errorf("%w (at most %d levels)", ErrTooDeep, MaxDepth)
	}
	var idx string
	switch n := args.(type) {
	case json.Number:
		f, err := n.Float64()
		if err != nil || f < 0 || f != math.Trunc(f) || f >= float64(nData) {
			return fmt.Errorf("%w: %s is not an index of %d scopes", ErrVar, n, nData)
		}
		return nil
	case string:
		idx = n
	default:
		return fmt.Errorf("%w: the index must be a number or a string of digits", ErrVar)
	}
	if idx == "" || strings.TrimLeft(idx, "0123456789") != "" || len(idx) > 9 {
		return fmt.Errorf("%w: %q is not an index", ErrVar, idx)
	}
	i, err := strconv.Atoi(idx)
	if err != nil || i >= nData {
		return fmt.Errorf("%w: %q is not an index of %d scopes", ErrVar, idx, nData)
	}
	return nil
}

// ValidScope reports whether s is an RFC 6749 scope-token: one or more
// printable ASCII characters other than space, '"' and '\'.
func ValidScope(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// Canonical is a stable text form of an expression for comparing two of
// them: the rule re-encoded with sorted keys, then " data=" and the data
// joined by spaces. A rule that is not JSON yields "invalid:" and the
// rule as given (so it never equals a valid one).
func Canonical(rule json.RawMessage, data []string) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(rule))
	dec.UseNumber()
	if dec.Decode(&v) != nil || hasDuplicateKey(rule) {
		return "invalid:" + string(rule)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "invalid:" + string(rule)
	}
	return string(b) + " data=" + strings.Join(data, " ")
}
