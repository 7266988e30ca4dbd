package oxd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/alexedwards/scs/v2"
)

// The scs codec New installs (see Config.GobSessions): a logged-in
// session, which is the User alone, is written without gob, and any other
// value still goes through scs's gob encoding.
//
// scs's GobCodec starts a new gob stream for every session: each load
// decodes the gob type descriptors again and compiles a decoder for them,
// which took a third of the CPU of an authenticated request in the peer
// benchmark, and each stored session carries those descriptors.
//
// Layout: sessionCodecMagic, sessionCodecVersion, the deadline (varint
// Unix nanoseconds, 0 for none), the User's encoding (uvarint length, 0
// for no user, then User.GobEncode's bytes), then the other values as
// scs's GobCodec writes them (nothing when there are none). A gob stream
// never starts with sessionCodecMagic, so sessions written by GobCodec are
// told apart and still read.
const (
	sessionCodecMagic   = 0xC0 // gob starts with a length: < 0x80 or 0xF8–0xFF
	sessionCodecVersion = 1
)

// sessionCodec is the scs.Codec described above. writeGob writes scs's
// gob encoding instead (Config.GobSessions); both encodings are read
// either way.
type sessionCodec struct {
	writeGob bool
}

var _ scs.Codec = sessionCodec{}

var errSessionEncoding = errors.New("oxd: malformed session encoding")

// installSessionCodec puts the codec on sm unless the application set a
// codec of its own (scs's default GobCodec is replaced: the codec reads
// what it wrote).
func installSessionCodec(sm *scs.SessionManager, writeGob bool) {
	// Sticky: once one Auth of the process asks for the previous
	// encoding, a later New without it does not switch it off under the
	// first (version 2 is read by every release).
	if writeGob {
		previousUserEncoding.Store(true)
	}
	switch sm.Codec.(type) {
	case nil, scs.GobCodec, sessionCodec:
		sm.Codec = sessionCodec{writeGob: writeGob}
	}
}

// Encode implements scs.Codec.
func (c sessionCodec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	if c.writeGob {
		return scs.GobCodec{}.Encode(deadline, values)
	}
	u, _ := values[sessionKeyUser].(*User)
	rest := len(values)
	var ub []byte
	if u != nil {
		var err error
		if ub, err = u.GobEncode(); err != nil {
			return nil, err
		}
		rest--
	}
	b := make([]byte, 0, len(ub)+24)
	b = append(b, sessionCodecMagic, sessionCodecVersion)
	b = appendTime(b, deadline)
	b = binary.AppendUvarint(b, uint64(len(ub)))
	b = append(b, ub...)
	if rest == 0 {
		return b, nil
	}
	others := make(map[string]any, rest)
	for k, v := range values {
		if u == nil || k != sessionKeyUser {
			others[k] = v
		}
	}
	g, err := scs.GobCodec{}.Encode(time.Time{}, others)
	if err != nil {
		return nil, err
	}
	return append(b, g...), nil
}

// Decode implements scs.Codec.
func (sessionCodec) Decode(b []byte) (time.Time, map[string]any, error) {
	if len(b) == 0 || b[0] != sessionCodecMagic {
		return scs.GobCodec{}.Decode(b)
	}
	if len(b) < 2 || b[1] != sessionCodecVersion {
		return time.Time{}, nil, errSessionEncoding
	}
	d := decoder{b: b[2:]}
	deadline := d.time()
	ub := d.bytes()
	if d.err {
		return time.Time{}, nil, errSessionEncoding
	}
	values := make(map[string]any, 1)
	if len(d.b) > 0 {
		_, others, err := scs.GobCodec{}.Decode(d.b)
		if err != nil {
			return time.Time{}, nil, fmt.Errorf("%w: %w", errSessionEncoding, err)
		}
		for k, v := range others {
			values[k] = v
		}
	}
	if len(ub) > 0 {
		u := new(User)
		if err := u.GobDecode(ub); err != nil {
			return time.Time{}, nil, err
		}
		values[sessionKeyUser] = u
	}
	return deadline, values, nil
}
