package oxdclient

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// A fast decoder for the answers most commands return: a flat JSON object
// of strings, integers, booleans and nulls, decoded into a struct whose
// fields are exactly those kinds. It exists because encoding/json validates
// the whole input before decoding it, which costs more than the rest of a
// command's client-side work. It declines (returns false) on anything it
// does not handle exactly like encoding/json — nested values, non-ASCII or
// \u escapes, keys that only match case-insensitively, numbers that do not
// fit, type mismatches, syntax errors — and the caller then uses
// encoding/json, which gives the authoritative answer or error. A
// differential fuzz test (FuzzFlatDecode) holds the two together.

type flatKind uint8

const (
	flatString flatKind = iota + 1
	flatSecret          // a Secret: null sets "" (its UnmarshalJSON)
	flatInt
	flatBool
)

type flatField struct {
	name  string
	index int
	kind  flatKind
}

type flatType struct{ fields []flatField }

var (
	flatTypes      sync.Map // reflect.Type -> *flatType (nil: not eligible)
	secretType     = reflect.TypeFor[Secret]()
	unmarshalT     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalT = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// flatInfo returns how to decode struct type t, or nil if t is not a flat
// struct of string, Secret, int and bool fields with plain json tags.
func flatInfo(t reflect.Type) *flatType {
	if v, ok := flatTypes.Load(t); ok {
		return v.(*flatType)
	}
	ft := buildFlat(t)
	flatTypes.Store(t, ft)
	return ft
}

func buildFlat(t reflect.Type) *flatType {
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshalT) || reflect.PointerTo(t).Implements(textUnmarshalT) {
		return nil
	}
	ft := &flatType{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if !f.IsExported() || f.Anonymous || name == "" || name == "-" || opts == "string" || strings.Contains(opts, "string") {
			return nil
		}
		var k flatKind
		switch {
		case f.Type == secretType:
			k = flatSecret
		case reflect.PointerTo(f.Type).Implements(unmarshalT), reflect.PointerTo(f.Type).Implements(textUnmarshalT):
			return nil
		case f.Type.Kind() == reflect.String:
			k = flatString
		case f.Type.Kind() == reflect.Int || f.Type.Kind() == reflect.Int64:
			k = flatInt
		case f.Type.Kind() == reflect.Bool:
			k = flatBool
		default:
			return nil
		}
		for _, g := range ft.fields {
			if strings.EqualFold(g.name, name) {
				return nil // encoding/json's rules for near-duplicates: not ours
			}
		}
		ft.fields = append(ft.fields, flatField{name: name, index: i, kind: k})
	}
	return ft
}

// decodeFlat decodes data into result (a pointer to a flat struct) and
// reports whether it did; false leaves the decision to encoding/json.
func decodeFlat(data []byte, result any) bool {
	rv := reflect.ValueOf(result)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return false
	}
	ft := flatInfo(rv.Type().Elem())
	if ft == nil {
		return false
	}
	sv := rv.Elem()
	d := flatDecoder{b: data}
	d.ws()
	if !d.eat('{') {
		return false
	}
	d.ws()
	if d.eat('}') {
		d.ws()
		return d.i == len(d.b)
	}
	for {
		d.ws()
		key, ok := d.key()
		if !ok {
			return false
		}
		d.ws()
		if !d.eat(':') {
			return false
		}
		d.ws()
		var field *flatField
		for j := range ft.fields {
			if string(key) == ft.fields[j].name {
				field = &ft.fields[j]
				break
			}
		}
		if field == nil {
			for j := range ft.fields {
				if strings.EqualFold(ft.fields[j].name, string(key)) {
					return false // encoding/json would match it case-insensitively
				}
			}
		}
		if !d.value(field, sv) {
			return false
		}
		d.ws()
		if d.eat(',') {
			continue
		}
		if !d.eat('}') {
			return false
		}
		d.ws()
		return d.i == len(d.b)
	}
}

type flatDecoder struct {
	b   []byte
	i   int
	buf []byte
}

func (d *flatDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *flatDecoder) eat(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// key reads an object key without escapes or non-ASCII bytes.
func (d *flatDecoder) key() ([]byte, bool) {
	if !d.eat('"') {
		return nil, false
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			k := d.b[start:d.i]
			d.i++
			return k, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
		d.i++
	}
	return nil, false
}

// str reads a string value: ASCII, with the escapes \" \\ \/ \b \f \n \r
// \t (not \u).
func (d *flatDecoder) str() (string, bool) {
	if !d.eat('"') {
		return "", false
	}
	start := d.i
	// Fast path: no escapes.
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s := string(d.b[start:d.i])
			d.i++
			return s, true
		}
		if c == '\\' {
			break
		}
		if c < 0x20 || c >= 0x80 {
			return "", false
		}
		d.i++
	}
	d.buf = append(d.buf[:0], d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(d.buf), true
		case c == '\\':
			if d.i+1 >= len(d.b) {
				return "", false
			}
			var r byte
			switch d.b[d.i+1] {
			case '"', '\\', '/':
				r = d.b[d.i+1]
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			default:
				return "", false // \u and invalid escapes
			}
			d.buf = append(d.buf, r)
			d.i += 2
		case c < 0x20 || c >= 0x80:
			return "", false
		default:
			d.buf = append(d.buf, c)
			d.i++
		}
	}
	return "", false
}

// number returns the literal of a JSON number (strict grammar).
func (d *flatDecoder) number() ([]byte, bool) {
	start := d.i
	d.eat('-')
	switch {
	case d.eat('0'):
	case d.i < len(d.b) && d.b[d.i] >= '1' && d.b[d.i] <= '9':
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
		}
	default:
		return nil, false
	}
	if d.i < len(d.b) {
		switch d.b[d.i] {
		case '.', 'e', 'E':
			return nil, false // not an integer: encoding/json decides
		}
	}
	return d.b[start:d.i], true
}

func (d *flatDecoder) literal(word string) bool {
	if bytes.HasPrefix(d.b[d.i:], []byte(word)) {
		d.i += len(word)
		return true
	}
	return false
}

// value reads one scalar value into field of sv (nil field: an unknown key,
// whose scalar value is skipped).
func (d *flatDecoder) value(field *flatField, sv reflect.Value) bool {
	if d.i >= len(d.b) {
		return false
	}
	var fv reflect.Value
	if field != nil {
		fv = sv.Field(field.index)
	}
	switch c := d.b[d.i]; {
	case c == '"':
		s, ok := d.str()
		if !ok {
			return false
		}
		if field == nil {
			return true
		}
		if field.kind != flatString && field.kind != flatSecret {
			return false
		}
		fv.SetString(s)
	case c == '-' || c >= '0' && c <= '9':
		lit, ok := d.number()
		if !ok {
			return false
		}
		if field == nil {
			return true
		}
		if field.kind != flatInt {
			return false
		}
		n, err := strconv.ParseInt(string(lit), 10, fv.Type().Bits())
		if err != nil {
			return false
		}
		fv.SetInt(n)
	case c == 't' || c == 'f':
		v := c == 't'
		word := "false"
		if v {
			word = "true"
		}
		if !d.literal(word) {
			return false
		}
		if field == nil {
			return true
		}
		if field.kind != flatBool {
			return false
		}
		fv.SetBool(v)
	case c == 'n':
		if !d.literal("null") {
			return false
		}
		if field != nil && field.kind == flatSecret {
			fv.SetString("")
		}
	default:
		return false // objects, arrays, garbage
	}
	return true
}
