package wire

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf16"
)

// utf16Units counts UTF-16 code units the way Java's String.length() does,
// independently of UTF16Len (decode to runes, encode to UTF-16).
func utf16Units(s string) int { return len(utf16.Encode([]rune(s))) }

// wireFixtures returns the exact-bytes fixtures: captured oxd-server
// responses (oxd-php logs), the socket-3.1/wire files and oxd-node's request.
func wireFixtures(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "wire", "*.txt"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no wire fixtures: %v", err)
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// TestReadFrameFixturesPrefixesExact reads every captured/constructed wire
// file: the prefix must equal the UTF-16 length of the JSON that follows,
// the frame must consume the file exactly, and the JSON must be valid.
func TestReadFrameFixturesPrefixesExact(t *testing.T) {
	for name, raw := range wireFixtures(t) {
		t.Run(name, func(t *testing.T) {
			want, err := strconv.Atoi(string(raw[:4]))
			if err != nil {
				t.Fatalf("fixture prefix %q: %v", raw[:4], err)
			}
			if got := utf16Units(string(raw[4:])); got != want {
				t.Fatalf("fixture prefix %d but payload has %d UTF-16 units", want, got)
			}
			if got := UTF16Len(raw[4:]); got != want {
				t.Fatalf("UTF16Len = %d, want %d", got, want)
			}
			// Whole, and one byte at a time (any chunking).
			for _, mode := range []string{"whole", "bytewise"} {
				var rd io.Reader = bytes.NewReader(raw)
				if mode == "bytewise" {
					rd = iotest.OneByteReader(rd)
				}
				br := bufio.NewReaderSize(rd, 16)
				payload, err := ReadFrame(br)
				if err != nil {
					t.Fatalf("%s: ReadFrame: %v", mode, err)
				}
				if !bytes.Equal(payload, raw[4:]) {
					t.Fatalf("%s: payload differs from the fixture", mode)
				}
				if _, err := br.ReadByte(); err != io.EOF {
					t.Fatalf("%s: frame did not consume the fixture exactly (err %v)", mode, err)
				}
				if !json.Valid(payload) {
					t.Fatalf("%s: payload is not JSON", mode)
				}
			}
		})
	}
}

// TestNonASCIIRequestFixture: the fixture counts "ü" as one unit (0118); the
// escaped form that this package writes counts six bytes = six units, and
// both decode to the same JSON value.
func TestNonASCIIRequestFixture(t *testing.T) {
	raw := wireFixtures(t)["non_ascii.request.txt"]
	if string(raw[:4]) != "0118" || len(raw[4:]) != 119 {
		t.Fatalf("unexpected fixture: prefix %q, %d bytes", raw[:4], len(raw[4:]))
	}
	esc := EscapeNonASCII(raw[4:])
	if !bytes.Contains(esc, []byte(`j\u00fcrgen`)) {
		t.Fatalf("ü not escaped: %s", esc)
	}
	frame, err := AppendFrame(nil, esc)
	if err != nil {
		t.Fatal(err)
	}
	if string(frame[:4]) != "0123" || len(frame) != 4+123 {
		t.Fatalf("escaped frame prefix %q len %d", frame[:4], len(frame))
	}
	var a, b any
	if err := json.Unmarshal(raw[4:], &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(esc, &b); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("escaping changed the value:\n%s\n%s", ja, jb)
	}
}

func TestEscapeNonASCII(t *testing.T) {
	cases := []struct {
		name, in, want string
	}{
		{"ascii unchanged", `{"a":"b c"}`, `{"a":"b c"}`},
		{"latin1", `{"n":"jürgen"}`, `{"n":"j\u00fcrgen"}`},
		{"bmp cjk", `["日本"]`, `["\u65e5\u672c"]`},
		{"emoji surrogate pair", `["😀"]`, `["\ud83d\ude00"]`},
		{"del", "[\"\x7f\"]", `["\u007f"]`},
		{"invalid utf8", "[\"\xff\"]", `["\ufffd"]`},
		{"mixed", `{"k":"aé😀z"}`, `{"k":"a\u00e9\ud83d\ude00z"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := EscapeNonASCII([]byte(tc.in))
			if string(got) != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			for _, c := range got {
				if c >= 0x7f {
					t.Fatalf("non-ASCII byte %#x left", c)
				}
			}
			if UTF16Len(got) != len(got) {
				t.Fatalf("escaped text: units %d != bytes %d", UTF16Len(got), len(got))
			}
			if json.Valid([]byte(tc.in)) {
				var a, b any
				_ = json.Unmarshal([]byte(tc.in), &a)
				if err := json.Unmarshal(got, &b); err != nil {
					t.Fatal(err)
				}
				ja, _ := json.Marshal(a)
				jb, _ := json.Marshal(b)
				if !bytes.Equal(ja, jb) {
					t.Fatalf("value changed: %s vs %s", ja, jb)
				}
			}
		})
	}
}

func TestEscapeNonASCIIDoesNotAllocateForASCII(t *testing.T) {
	in := []byte(`{"command":"get_rp","params":{"oxd_id":"x"}}`)
	if n := testing.AllocsPerRun(100, func() { _ = EscapeNonASCII(in) }); n != 0 {
		t.Fatalf("%v allocs for ASCII input", n)
	}
}

func TestUTF16Len(t *testing.T) {
	for _, s := range []string{"", "abc", "ü", "日本語", "😀", "a😀ü日", strings.Repeat("😀", 100)} {
		if got, want := UTF16Len([]byte(s)), utf16Units(s); got != want {
			t.Errorf("UTF16Len(%q) = %d, want %d", s, got, want)
		}
	}
	// Invalid bytes count one unit each (a decoder replaces each by U+FFFD).
	if got := UTF16Len([]byte("a\xff\xfeb")); got != 4 {
		t.Errorf("invalid bytes: %d", got)
	}
}

func TestAppendFrame(t *testing.T) {
	f, err := AppendFrame([]byte("x"), []byte(`{"a":1}`))
	if err != nil || string(f) != `x0007{"a":1}` {
		t.Fatalf("got %q, %v", f, err)
	}
	if _, err := AppendFrame(nil, nil); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty: %v", err)
	}
	max := bytes.Repeat([]byte("a"), MaxUnits)
	f, err = AppendFrame(nil, max)
	if err != nil || string(f[:4]) != "9999" {
		t.Fatalf("9999: %q %v", f[:4], err)
	}
	dst := []byte("keep")
	out, err := AppendFrame(dst, append(max, 'a'))
	if !errors.Is(err, ErrTooLarge) || string(out) != "keep" {
		t.Fatalf("10000: %q %v", out, err)
	}
	// Counted in UTF-16 units: 5000 emoji = 10000 units although 20000 bytes,
	// 4999 emoji + 1 = 9999.
	if _, err := AppendFrame(nil, []byte(strings.Repeat("😀", 5000))); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("5000 emoji: %v", err)
	}
	f, err = AppendFrame(nil, []byte(strings.Repeat("😀", 4999)+"a"))
	if err != nil || string(f[:4]) != "9999" {
		t.Fatalf("4999 emoji: %q %v", f[:4], err)
	}
}

func TestReadPrefix(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want error
	}{
		{"0079", 79, nil},
		{"9999", 9999, nil},
		{"0001x", 1, nil},
		{"0000", 0, ErrEmpty},
		{"abcd", 0, ErrBadPrefix},
		{"-001", 0, ErrBadPrefix},
		{"+123", 0, ErrBadPrefix},
		{" 123", 0, ErrBadPrefix},
		{"00", 0, ErrTruncated},
		{"", 0, io.EOF},
	}
	for _, tc := range cases {
		// A plain reader, a bufio.Reader (no-copy path), and one byte at a time.
		readers := map[string]io.Reader{
			"plain":    strings.NewReader(tc.in),
			"bufio":    bufio.NewReader(strings.NewReader(tc.in)),
			"bytewise": bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(tc.in)), 16),
		}
		for name, r := range readers {
			n, err := ReadPrefix(r)
			if !errors.Is(err, tc.want) || n != tc.n {
				t.Errorf("%s: ReadPrefix(%q) = %d, %v; want %d, %v", name, tc.in, n, err, tc.n, tc.want)
			}
		}
	}
	// The bufio path consumes exactly the prefix.
	br := bufio.NewReader(strings.NewReader("0002{}"))
	if n, err := ReadPrefix(br); n != 2 || err != nil {
		t.Fatal(n, err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "{}" {
		t.Fatalf("rest %q", rest)
	}
	// A read error after part of the prefix is returned as is.
	boom := errors.New("boom")
	br = bufio.NewReader(io.MultiReader(strings.NewReader("00"), iotest.ErrReader(boom)))
	if _, err := ReadPrefix(br); !errors.Is(err, boom) {
		t.Fatalf("%v", err)
	}
}

func TestReadPayloadCountsUTF16Units(t *testing.T) {
	payload := `{"name":"Jürgen 日本 😀 end"}`
	units := utf16Units(payload)
	if units == len(payload) {
		t.Fatal("test payload must have bytes != units")
	}
	stream := strconv.Itoa(units)
	stream = strings.Repeat("0", 4-len(stream)) + stream + payload + "0002{}"
	br := bufio.NewReaderSize(iotest.OneByteReader(strings.NewReader(stream)), 16)
	got, err := ReadFrame(br)
	if err != nil || string(got) != payload {
		t.Fatalf("got %q, %v", got, err)
	}
	// The next frame starts exactly after the first.
	got, err = ReadFrame(br)
	if err != nil || string(got) != "{}" {
		t.Fatalf("second frame %q, %v", got, err)
	}
}

func TestReadPayloadErrors(t *testing.T) {
	// Stream ends inside the payload.
	_, err := ReadFrame(bufio.NewReader(strings.NewReader("0010{\"a\":")))
	if !errors.Is(err, ErrTruncated) {
		t.Errorf("truncated: %v", err)
	}
	// Surrogate pair crossing the announced length: 1 unit announced, emoji = 2.
	_, err = ReadFrame(bufio.NewReader(strings.NewReader("0001😀")))
	if !errors.Is(err, ErrBadPrefix) {
		t.Errorf("crossing: %v", err)
	}
	if _, err := ReadPayload(bufio.NewReader(strings.NewReader("")), MaxUnits+1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	// A read error other than EOF is returned as is.
	boom := errors.New("boom")
	_, err = ReadFrame(bufio.NewReader(iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Errorf("reader error: %v", err)
	}
	_, err = ReadFrame(bufio.NewReader(io.MultiReader(strings.NewReader("0005ab"), iotest.ErrReader(boom))))
	if !errors.Is(err, boom) {
		t.Errorf("reader error mid payload: %v", err)
	}
}

func TestAppendPayloadReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 64)
	buf = append(buf, "keep"...)
	out, err := AppendPayload(buf, bufio.NewReader(strings.NewReader(`{"a":"ü"}`)), 9)
	if err != nil || string(out) != `keep{"a":"ü"}` {
		t.Fatalf("got %q, %v", out, err)
	}
	if &out[0] != &buf[:1][0] {
		t.Fatal("buffer not reused")
	}
	out, err = AppendPayload(buf[:4], bufio.NewReader(strings.NewReader(`{"a`)), 9)
	if !errors.Is(err, ErrTruncated) || string(out) != "keep" {
		t.Fatalf("error path: %q, %v", out, err)
	}
	// Reading an ASCII frame into a large enough buffer does not allocate.
	frame := []byte(`0013{"status":"ok"}`)
	rd := bytes.NewReader(frame)
	br := bufio.NewReader(rd)
	scratch := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		rd.Reset(frame)
		br.Reset(rd)
		n, err := ReadPrefix(br)
		if err != nil {
			t.Fatal(err)
		}
		if scratch, err = AppendPayload(scratch[:0], br, n); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per frame", allocs)
	}
}

// FuzzReadFrame: any byte stream either fails cleanly or yields a payload
// whose UTF-16 length is exactly the announced prefix, bounded in size, that
// re-frames to the same payload.
func FuzzReadFrame(f *testing.F) {
	for _, raw := range wireFixtures(f) {
		f.Add(raw)
	}
	f.Add([]byte("0000"))
	f.Add([]byte("abcd{}"))
	f.Add([]byte("0002😀"))
	f.Add([]byte("0001😀"))
	f.Add([]byte("0003\xff\xfe\xfd"))
	f.Add([]byte("9999"))
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(in), 16)
		payload, err := ReadFrame(br)
		if err != nil {
			if payload != nil {
				t.Fatal("payload returned with an error")
			}
			return
		}
		n, _ := strconv.Atoi(string(in[:4]))
		if got := UTF16Len(payload); got != n {
			t.Fatalf("payload has %d units, prefix says %d", got, n)
		}
		if len(payload) > 3*MaxUnits {
			t.Fatalf("payload of %d bytes", len(payload))
		}
		frame, err := AppendFrame(nil, payload)
		if err != nil {
			t.Fatalf("re-frame: %v", err)
		}
		again, err := ReadFrame(bufio.NewReader(bytes.NewReader(frame)))
		if err != nil || !bytes.Equal(again, payload) {
			t.Fatalf("re-read: %v", err)
		}
		// Escaped, the payload is ASCII and its byte length is its unit count.
		esc := EscapeNonASCII(payload)
		if UTF16Len(esc) != len(esc) {
			t.Fatal("escaped payload is not ASCII")
		}
	})
}
