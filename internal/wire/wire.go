// Package wire implements the framing of the oxd-server 3.1.x socket
// protocol: a 4-digit, zero-padded length prefix that counts UTF-16 code
// units, followed by that much JSON text, with no delimiter.
//
// It is shared by the client transport (oxdclient) and the socket listener
// (oxdserver).
package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxUnits is the largest payload a 4-digit prefix can announce.
const MaxUnits = 9999

// PrefixLen is the length of the ASCII length prefix.
const PrefixLen = 4

var (
	// ErrBadPrefix: the first four bytes are not four ASCII digits.
	ErrBadPrefix = errors.New("length prefix is not 4 ASCII digits")
	// ErrEmpty: the prefix announced zero units.
	ErrEmpty = errors.New("empty frame")
	// ErrTooLarge: the payload exceeds MaxUnits UTF-16 units.
	ErrTooLarge = errors.New("frame exceeds 9999 UTF-16 units")
	// ErrTruncated: the stream ended inside a frame.
	ErrTruncated = errors.New("stream ended inside a frame")
)

// EscapeNonASCII returns JSON text in which every character outside
// printable ASCII is written as a \uXXXX escape (surrogate pairs above
// U+FFFF), so that its byte length equals its UTF-16 length. The input must
// be valid JSON produced by encoding/json: non-ASCII only occurs inside
// strings, where the escape is equivalent. Invalid UTF-8 becomes \ufffd.
func EscapeNonASCII(js []byte) []byte {
	ascii := true
	for _, c := range js {
		if c >= utf8.RuneSelf || c == 0x7f {
			ascii = false
			break
		}
	}
	if ascii {
		return js
	}
	out := make([]byte, 0, len(js)+32)
	const hex = "0123456789abcdef"
	esc := func(u uint16) {
		out = append(out, '\\', 'u', hex[u>>12&0xf], hex[u>>8&0xf], hex[u>>4&0xf], hex[u&0xf])
	}
	for i := 0; i < len(js); {
		c := js[i]
		if c < utf8.RuneSelf && c != 0x7f {
			out = append(out, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(js[i:])
		i += size
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			esc(uint16(r1))
			esc(uint16(r2))
			continue
		}
		esc(uint16(r))
	}
	return out
}

// UTF16Len returns the number of UTF-16 code units of the UTF-8 text b
// (invalid bytes count one unit each, as a decoder replaces them with
// U+FFFD).
func UTF16Len(b []byte) int {
	n := 0
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		i += size
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// AppendFrame appends the framed payload to dst. It fails with ErrTooLarge
// (nothing appended) when the payload exceeds MaxUnits UTF-16 units and with
// ErrEmpty for an empty payload.
func AppendFrame(dst, payload []byte) ([]byte, error) {
	n := UTF16Len(payload)
	if n == 0 {
		return dst, ErrEmpty
	}
	if n > MaxUnits {
		return dst, fmt.Errorf("%w (%d units)", ErrTooLarge, n)
	}
	dst = append(dst, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
	return append(dst, payload...), nil
}

// ReadPrefix reads the 4-digit prefix and returns the announced unit count.
// io.EOF is returned unchanged when the stream ends before the first byte.
func ReadPrefix(r io.Reader) (int, error) {
	if br, ok := r.(*bufio.Reader); ok {
		// Without a copy (and without the allocation of one).
		p, err := br.Peek(PrefixLen)
		if len(p) < PrefixLen {
			if len(p) > 0 && (err == nil || errors.Is(err, io.EOF)) {
				_, _ = br.Discard(len(p))
				return 0, ErrTruncated
			}
			_, _ = br.Discard(len(p))
			return 0, err
		}
		n, err := parsePrefix(p)
		_, _ = br.Discard(PrefixLen)
		return n, err
	}
	var p [PrefixLen]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, ErrTruncated
		}
		return 0, err
	}
	return parsePrefix(p[:])
}

func parsePrefix(p []byte) (int, error) {
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, ErrBadPrefix
		}
		n = n*10 + int(c-'0')
	}
	if n == 0 {
		return 0, ErrEmpty
	}
	return n, nil
}

// ReadPayload reads text from r until it holds exactly units UTF-16 code
// units of UTF-8 text, and returns its bytes. A character that would
// overshoot the count (the second half of a surrogate pair) is an error.
func ReadPayload(r *bufio.Reader, units int) ([]byte, error) {
	if units > MaxUnits {
		return nil, ErrTooLarge
	}
	b, err := AppendPayload(make([]byte, 0, max(units, 0)), r, units)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendPayload is ReadPayload appending to dst, so that a caller can reuse
// one buffer for many frames. On error it returns dst unchanged (its
// spare capacity may have been written).
func AppendPayload(dst []byte, r *bufio.Reader, units int) ([]byte, error) {
	if units > MaxUnits {
		return dst, ErrTooLarge
	}
	start := len(dst)
	buf := dst
	got := 0
	for got < units {
		// Fast path: take the ASCII bytes that are already buffered.
		if n := r.Buffered(); n > 0 {
			peek, _ := r.Peek(min(n, units-got))
			k := 0
			for k < len(peek) && peek[k] < utf8.RuneSelf {
				k++
			}
			if k > 0 {
				buf = append(buf, peek[:k]...)
				_, _ = r.Discard(k)
				got += k
				continue
			}
		}
		ru, size, err := r.ReadRune()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = ErrTruncated
			}
			return buf[:start], err
		}
		w := 1
		if ru >= 0x10000 {
			w = 2
		}
		if got+w > units {
			return buf[:start], fmt.Errorf("%w: character crosses the announced length", ErrBadPrefix)
		}
		got += w
		if ru == utf8.RuneError && size == 1 {
			buf = utf8.AppendRune(buf, utf8.RuneError)
			continue
		}
		buf = utf8.AppendRune(buf, ru)
	}
	return buf, nil
}

// ReadFrame reads one frame: prefix and payload.
func ReadFrame(r *bufio.Reader) ([]byte, error) {
	n, err := ReadPrefix(r)
	if err != nil {
		return nil, err
	}
	return ReadPayload(r, n)
}
