package ttlv

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// Known answers from the examples of the KMIP 1.x specification, section
// 9.1.2, one per type.
var vectors = []struct {
	name string
	item Item
	enc  string
}{
	{"integer 8", Int(0x420020, 8), "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00"},
	{"long integer 123456789000000000", Item{Tag: 0x420020, Type: LongInteger, Int: 123456789000000000}, "42 00 20 | 03 | 00 00 00 08 | 01 B6 9B 4B A5 74 92 00"},
	{"big integer", Item{Tag: 0x420020, Type: BigInteger, Bytes: unhex("00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00")}, "42 00 20 | 04 | 00 00 00 10 | 00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00"},
	{"enumeration 255", Enum(0x420020, 255), "42 00 20 | 05 | 00 00 00 04 | 00 00 00 FF 00 00 00 00"},
	{"boolean true", Bool(0x420020, true), "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 01"},
	{"text Hello World", Text(0x420020, "Hello World"), "42 00 20 | 07 | 00 00 00 0B | 48 65 6C 6C 6F 20 57 6F 72 6C 64 00 00 00 00 00"},
	{"bytes 010203", Bytes(0x420020, []byte{1, 2, 3}), "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00 00"},
	{"date-time", Item{Tag: 0x420020, Type: DateTime, Int: 0x47DA67F8}, "42 00 20 | 09 | 00 00 00 08 | 00 00 00 00 47 DA 67 F8"},
	{"interval 10 days", Item{Tag: 0x420020, Type: Interval, Int: 864000}, "42 00 20 | 0A | 00 00 00 04 | 00 0D 2F 00 00 00 00 00"},
	{"structure", Struct(0x420020, Enum(0x420004, 254), Int(0x420005, 255)),
		"42 00 20 | 01 | 00 00 00 20 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00 | 42 00 05 | 02 | 00 00 00 04 | 00 00 00 FF 00 00 00 00"},
	{"empty text", Text(0x420020, ""), "42 00 20 | 07 | 00 00 00 00"},
	{"negative integer", Int(0x420020, -1), "42 00 20 | 02 | 00 00 00 04 | FF FF FF FF 00 00 00 00"},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		want := unhex(strings.ReplaceAll(v.enc, "|", ""))
		got := Encode(nil, v.item)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: encoded %x, want %x", v.name, got, want)
		}
		it, rest, err := Decode(want)
		if err != nil || len(rest) != 0 {
			t.Errorf("%s: decode: %v (%d left)", v.name, err, len(rest))
			continue
		}
		if !bytes.Equal(Encode(nil, it), want) {
			t.Errorf("%s: decode→encode differs", v.name)
		}
		if n, err := Header(want); err != nil || n != len(want) {
			t.Errorf("%s: Header = %d, %v", v.name, n, err)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := unhex("42002001 00000010 42000402 00000004 0000000800000000")
	if _, _, err := Decode(good); err != nil {
		t.Fatal(err)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := map[string][]byte{
		"empty":               {},
		"short header":        good[:7],
		"truncated value":     good[:len(good)-1],
		"truncated structure": good[:16],
		"bad padding":         mut(func(b []byte) []byte { b[len(b)-1] = 1; return b }),
		"integer length 8":    mut(func(b []byte) []byte { b[15] = 8; b[7] = 0x14; return append(b, make([]byte, 8)...) }),
		"unknown type":        mut(func(b []byte) []byte { b[11] = 0x0B; return b }),
		"type zero":           mut(func(b []byte) []byte { b[11] = 0; return b }),
		"structure length 12": mut(func(b []byte) []byte { b[7] = 12; return b }),
		"child overruns":      mut(func(b []byte) []byte { b[7] = 8; return b }),
		"boolean 2":           unhex("42002006 00000008 0000000000000002"),
		"big integer 3 bytes": unhex("42002004 00000003 0102030000000000"),
		"text pad non-zero":   unhex("42002007 00000001 41 00000000000001"),
		"length beyond input": unhex("42002008 7fffffff 00"),
	}
	for name, b := range cases {
		if _, _, err := Decode(b); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	deep := Int(0x420001, 1)
	for i := 0; i < MaxDepth+1; i++ {
		deep = Struct(0x420001, deep)
	}
	if _, _, err := Decode(Encode(nil, deep)); err == nil {
		t.Error("nesting beyond MaxDepth accepted")
	}
	var e *Error
	if _, _, err := Decode(good[:10]); !errors.As(err, &e) {
		t.Errorf("error type %T", err)
	}
}

func TestDecodeRest(t *testing.T) {
	a := Encode(nil, Int(0x420001, 1))
	b := Encode(nil, Text(0x420002, "x"))
	it, rest, err := Decode(append(append([]byte(nil), a...), b...))
	if err != nil || it.Int != 1 || !bytes.Equal(rest, b) {
		t.Fatalf("%v %v %x", it, err, rest)
	}
}

func FuzzDecode(f *testing.F) {
	for _, v := range vectors {
		f.Add(unhex(strings.ReplaceAll(v.enc, "|", "")))
	}
	f.Add(Encode(nil, Struct(0x42007B, Struct(0x42007A, Int(0x42000D, 1)), Struct(0x42000F, Enum(0x42005C, 0x1F), Bytes(0x4200C2, make([]byte, 40))))))
	f.Fuzz(func(t *testing.T, b []byte) {
		it, rest, err := Decode(b)
		if err != nil {
			return
		}
		enc := Encode(nil, it)
		if !bytes.Equal(enc, b[:len(b)-len(rest)]) {
			t.Fatalf("decode→encode not canonical:\n in  %x\n out %x", b[:len(b)-len(rest)], enc)
		}
		if n, err := Header(b); err != nil || n != len(enc) {
			t.Fatalf("Header = %d, %v; item is %d bytes", n, err, len(enc))
		}
	})
}
