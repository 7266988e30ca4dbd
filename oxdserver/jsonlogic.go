package oxdserver

import (
	"bytes"
	"encoding/json"
	"math"
)

// jsonLogicOps are the operators of JsonLogic (jsonlogic.com/operations).
var jsonLogicOps = map[string]bool{
	"var": true, "missing": true, "missing_some": true,
	"if": true, "?:": true, "==": true, "===": true, "!=": true, "!==": true, "!": true, "!!": true,
	"or": true, "and": true, ">": true, ">=": true, "<": true, "<=": true,
	"max": true, "min": true, "+": true, "-": true, "*": true, "/": true, "%": true,
	"map": true, "reduce": true, "filter": true, "all": true, "none": true, "some": true,
	"merge": true, "in": true, "cat": true, "substr": true, "log": true,
}

// maxJSONLogicDepth bounds the nesting of a scope expression.
const maxJSONLogicDepth = 32

// validScopeExpression reports whether e is a usable oxd scope expression:
// a JsonLogic rule that is an operation object (exactly one known operator
// per object, recursively), and a non-empty data list of scopes; every
// numeric "var" must index into data.
func validScopeExpression(rule json.RawMessage, data []string) bool {
	if len(data) == 0 {
		return false
	}
	for _, s := range data {
		if s == "" {
			return false
		}
	}
	dec := json.NewDecoder(bytes.NewReader(rule))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return false
	}
	if _, ok := v.(map[string]any); !ok {
		return false
	}
	return validLogic(v, len(data), 0)
}

func validLogic(v any, nData, depth int) bool {
	if depth > maxJSONLogicDepth {
		return false
	}
	switch x := v.(type) {
	case map[string]any:
		if len(x) != 1 {
			return false
		}
		for op, args := range x {
			if !jsonLogicOps[op] {
				return false
			}
			if op == "var" && !validVar(args, nData) {
				return false
			}
			if arr, ok := args.([]any); ok {
				for _, a := range arr {
					if !validLogic(a, nData, depth+1) {
						return false
					}
				}
				continue
			}
			if !validLogic(args, nData, depth+1) {
				return false
			}
		}
		return true
	case []any:
		for _, a := range x {
			if !validLogic(a, nData, depth+1) {
				return false
			}
		}
		return true
	default:
		return true // literals
	}
}

// validVar checks {"var": n}, {"var": [n]} or {"var": [n, default]} with a
// numeric index into data; string paths are allowed as they are.
func validVar(args any, nData int) bool {
	if arr, ok := args.([]any); ok {
		if len(arr) == 0 || len(arr) > 2 {
			return false
		}
		args = arr[0]
	}
	n, ok := args.(json.Number)
	if !ok {
		return true
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f != math.Trunc(f) {
		return false
	}
	return int(f) < nData
}
