package oxdserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/oxdgo/oxd/oxdclient"
)

// Error descriptions of oxd-server 3.1.4 that the front-ends produce
// themselves (reference §3.2).
const (
	// feDescResponseTooLarge answers a command whose response does not fit in
	// a socket frame (outside the 3.1.4 quirks mode, where the connection is
	// closed without a reply instead).
	feDescResponseTooLarge = "Response is too large for the oxd socket protocol (more than 9999 characters). Use the HTTPS extension for this command."
)

// feGenericInternalError is the exact answer after which oxd-server 3.1.4
// closes the connection (127 characters).
const feGenericInternalError = `{"status":"error","data":{"error":"internal_error","error_description":"Unknown internal server error occurs.","details":null}}`

// Errors of feDecodeCommand.
var (
	// errFEBlankCommand: the frame holds only white space. 3.1.4 closes the
	// connection without a reply.
	errFEBlankCommand = errors.New("blank command")
	// errFEMalformedCommand: the frame is not a JSON object with at most the
	// keys "command" (a string) and "params". 3.1.4 answers the generic
	// internal error and closes the connection.
	errFEMalformedCommand = errors.New("malformed command envelope")
)

// feCommand is a decoded socket request envelope.
type feCommand struct {
	// Name is the command name in lower case ("" when absent or null).
	Name string
	// Params is the params object; nil when params is absent, null, or not
	// a JSON object (HasParams is false then).
	Params    json.RawMessage
	HasParams bool
}

// feDecodeCommand decodes the JSON text of one socket frame:
// {"command":"<name>","params":{...}}. Unknown top-level keys, invalid JSON,
// a non-object, or a non-string command name are errFEMalformedCommand (the
// generic internal error of 3.1.4); a frame of white space is
// errFEBlankCommand. A missing, null or non-object params is not an error:
// HasParams reports it.
func feDecodeCommand(payload []byte) (feCommand, error) {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) == 0 {
		return feCommand{}, errFEBlankCommand
	}
	if trimmed[0] != '{' {
		return feCommand{}, errFEMalformedCommand
	}
	// json.Unmarshal checks the whole frame is valid JSON (no trailing
	// data) before decoding anything, and gives each value its own copy.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &top); err != nil {
		return feCommand{}, errFEMalformedCommand
	}
	var c feCommand
	for k, v := range top {
		switch k {
		case "command":
			if feIsJSONNull(v) {
				continue
			}
			name, ok := feSimpleJSONString(v)
			if !ok {
				if err := json.Unmarshal(v, &name); err != nil {
					return feCommand{}, errFEMalformedCommand
				}
			}
			c.Name = strings.ToLower(strings.TrimSpace(name))
		case "params":
			// v is the map's own copy of the value, not part of payload.
			v = bytes.TrimSpace(v)
			if len(v) > 0 && v[0] == '{' {
				c.Params = v
				c.HasParams = true
			}
		default:
			return feCommand{}, errFEMalformedCommand
		}
	}
	return c, nil
}

// feSimpleJSONString returns the value of v, a valid JSON value, when it
// is a string of printable ASCII without escapes; ok is false otherwise
// (the caller decodes it with encoding/json then).
func feSimpleJSONString(v json.RawMessage) (string, bool) {
	v = bytes.TrimSpace(v)
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	in := v[1 : len(v)-1]
	for _, b := range in {
		if b < 0x20 || b >= 0x7f || b == '\\' || b == '"' {
			return "", false
		}
	}
	return string(in), true
}

func feIsJSONNull(v json.RawMessage) bool {
	return string(bytes.TrimSpace(v)) == "null"
}

// feErrorData is the data of a status:"error" answer; details is always
// present (null unless need_info), as 3.1.x serializes it.
type feErrorData struct {
	Error            string          `json:"error"`
	ErrorDescription string          `json:"error_description"`
	Details          json.RawMessage `json:"details"`
}

type feEnvelope struct {
	Status string `json:"status"`
	Data   any    `json:"data"`
}

// feMarshalJSON encodes v without HTML escaping (URLs keep their "&", as
// oxd's Jackson writes them) and without a trailing newline.
func feMarshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// feEncodeOK returns {"status":"ok","data":<data>}.
func feEncodeOK(data any) ([]byte, error) {
	return feMarshalJSON(feEnvelope{Status: "ok", Data: data})
}

// feEncodeError returns {"status":"error","data":{"error","error_description","details"}}.
func feEncodeError(e *oxdclient.Error) []byte {
	d := feErrorData{Error: e.Code, ErrorDescription: e.Description, Details: e.Details}
	if len(bytes.TrimSpace(d.Details)) == 0 || !json.Valid(d.Details) {
		d.Details = nil
	}
	b, err := feMarshalJSON(feEnvelope{Status: "error", Data: d})
	if err != nil {
		return []byte(feGenericInternalError)
	}
	return b
}

// feIsGenericInternalError reports whether b is the generic internal error
// after which the connection is closed.
func feIsGenericInternalError(e *oxdclient.Error) bool {
	return e.Code == oxdclient.CodeInternalError && e.Description == oxdclient.DescInternalErrorUnknown
}
