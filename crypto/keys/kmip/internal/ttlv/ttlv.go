// Package ttlv is the KMIP Tag-Type-Length-Value encoding (KMIP 1.x
// specification, section 9.1), the subset s3seal's KMIP client needs:
// every item type, strict decoding, and canonical encoding.
//
// # Encoding
//
// An item is a 3-byte tag, a 1-byte type, a 4-byte big-endian length and
// the value, padded with zero bytes to a multiple of 8. Integers,
// enumerations and intervals are 4 bytes (plus 4 of padding); long
// integers, booleans and date-times 8; text and byte strings their length;
// a structure holds items.
//
// Decode is strict, so that one message has one encoding: lengths must
// match the type, padding must be zero, a boolean is 0 or 1, a structure's
// length must be exactly that of its items, big integers are a multiple of
// 8 bytes, and nesting is bounded. Encode(Decode(b)) == b for every b that
// Decode accepts (FuzzDecode checks this).
package ttlv

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Type is an item's type.
type Type byte

// Item types.
const (
	Structure   Type = 0x01
	Integer     Type = 0x02
	LongInteger Type = 0x03
	BigInteger  Type = 0x04
	Enumeration Type = 0x05
	Boolean     Type = 0x06
	TextString  Type = 0x07
	ByteString  Type = 0x08
	DateTime    Type = 0x09
	Interval    Type = 0x0A
)

// MaxDepth bounds the nesting of structures Decode accepts.
const MaxDepth = 16

// Item is one TTLV item. Which value field is used depends on Type: Int
// for Integer, LongInteger, Enumeration, Boolean, DateTime and Interval
// (Integer is signed 32-bit, Enumeration and Interval unsigned 32-bit);
// Bytes for TextString, ByteString and BigInteger; Items for Structure.
type Item struct {
	Tag   uint32
	Type  Type
	Int   int64
	Bytes []byte
	Items []Item
}

// Constructors for the common types.

// Struct returns a structure.
func Struct(tag uint32, items ...Item) Item { return Item{Tag: tag, Type: Structure, Items: items} }

// Int returns an Integer.
func Int(tag uint32, v int32) Item { return Item{Tag: tag, Type: Integer, Int: int64(v)} }

// Enum returns an Enumeration.
func Enum(tag uint32, v uint32) Item { return Item{Tag: tag, Type: Enumeration, Int: int64(v)} }

// Text returns a TextString.
func Text(tag uint32, s string) Item { return Item{Tag: tag, Type: TextString, Bytes: []byte(s)} }

// Bytes returns a ByteString.
func Bytes(tag uint32, b []byte) Item { return Item{Tag: tag, Type: ByteString, Bytes: b} }

// Bool returns a Boolean.
func Bool(tag uint32, v bool) Item {
	i := Item{Tag: tag, Type: Boolean}
	if v {
		i.Int = 1
	}
	return i
}

// Find returns the first direct child of a structure with tag.
func (it Item) Find(tag uint32) (Item, bool) {
	for _, c := range it.Items {
		if c.Tag == tag {
			return c, true
		}
	}
	return Item{}, false
}

// FindAll returns every direct child with tag.
func (it Item) FindAll(tag uint32) []Item {
	var out []Item
	for _, c := range it.Items {
		if c.Tag == tag {
			out = append(out, c)
		}
	}
	return out
}

// Error reports input that is not valid TTLV.
type Error struct {
	Offset int
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("ttlv: at byte %d: %s", e.Offset, e.Reason) }

// ErrShort is wrapped by errors about input that ends inside an item:
// reading more may complete it.
var ErrShort = errors.New("ttlv: input ends inside an item")

func pad8(n int) int { return (n + 7) &^ 7 }

// fixedSize returns the value length of a fixed-size type, or -1.
func fixedSize(t Type) int {
	switch t {
	case Integer, Enumeration, Interval:
		return 4
	case LongInteger, Boolean, DateTime:
		return 8
	}
	return -1
}

// Encode appends the encoding of it to dst. It panics on an item that
// cannot be encoded (a value out of its type's range, an unknown type, a
// tag outside 24 bits): items are built by this program, so that is a bug.
func Encode(dst []byte, it Item) []byte {
	if it.Tag > 0xFFFFFF {
		panic("ttlv: internal error: tag beyond 24 bits")
	}
	start := len(dst)
	dst = append(dst, byte(it.Tag>>16), byte(it.Tag>>8), byte(it.Tag), byte(it.Type), 0, 0, 0, 0)
	switch it.Type {
	case Structure:
		for _, c := range it.Items {
			dst = Encode(dst, c)
		}
	case Integer:
		if it.Int < -1<<31 || it.Int > 1<<31-1 {
			panic("ttlv: internal error: integer out of range")
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(int32(it.Int)))
		dst = append(dst, 0, 0, 0, 0)
	case Enumeration, Interval:
		if it.Int < 0 || it.Int > 1<<32-1 {
			panic("ttlv: internal error: enumeration out of range")
		}
		dst = binary.BigEndian.AppendUint32(dst, uint32(it.Int))
		dst = append(dst, 0, 0, 0, 0)
	case LongInteger, DateTime:
		dst = binary.BigEndian.AppendUint64(dst, uint64(it.Int))
	case Boolean:
		if it.Int != 0 && it.Int != 1 {
			panic("ttlv: internal error: boolean not 0 or 1")
		}
		dst = binary.BigEndian.AppendUint64(dst, uint64(it.Int))
	case TextString, ByteString, BigInteger:
		if it.Type == BigInteger && len(it.Bytes)%8 != 0 {
			panic("ttlv: internal error: big integer not a multiple of 8 bytes")
		}
		dst = append(dst, it.Bytes...)
		for len(dst)%8 != start%8 {
			dst = append(dst, 0)
		}
	default:
		panic("ttlv: internal error: unknown type")
	}
	n := len(dst) - start - 8
	if it.Type == TextString || it.Type == ByteString || it.Type == BigInteger {
		n = len(it.Bytes)
	} else if fs := fixedSize(it.Type); fs > 0 {
		n = fs
	}
	binary.BigEndian.PutUint32(dst[start+4:], uint32(n))
	return dst
}

// Decode decodes one item from the start of b and returns it with the
// bytes after it. Byte and text values alias b.
func Decode(b []byte) (Item, []byte, error) {
	it, n, err := decode(b, 0, 0)
	if err != nil {
		return Item{}, nil, err
	}
	return it, b[n:], nil
}

// Header returns the total encoded size of the item that b starts with,
// from its first 8 bytes, so that a reader knows how much to read.
func Header(b []byte) (int, error) {
	if len(b) < 8 {
		return 0, &Error{0, "short header"}
	}
	n := int(binary.BigEndian.Uint32(b[4:8]))
	t := Type(b[3])
	if fs := fixedSize(t); fs > 0 && n != fs {
		return 0, &Error{4, fmt.Sprintf("length %d for type %#02x", n, byte(t))}
	}
	if t == Structure && n%8 != 0 {
		return 0, &Error{4, "structure length not a multiple of 8"}
	}
	return 8 + pad8(n), nil
}

func decode(b []byte, off, depth int) (Item, int, error) {
	if len(b) < 8 {
		return Item{}, 0, &Error{off, ErrShort.Error()}
	}
	it := Item{Tag: uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]), Type: Type(b[3])}
	n := int(binary.BigEndian.Uint32(b[4:8]))
	if n > len(b)-8 || pad8(n) > len(b)-8 {
		return Item{}, 0, &Error{off, ErrShort.Error()}
	}
	v := b[8 : 8+n]
	total := 8 + pad8(n)
	for _, p := range b[8+n : total] {
		if p != 0 {
			return Item{}, 0, &Error{off + 8 + n, "non-zero padding"}
		}
	}
	if fs := fixedSize(it.Type); fs > 0 && n != fs {
		return Item{}, 0, &Error{off + 4, fmt.Sprintf("length %d for type %#02x", n, byte(it.Type))}
	}
	switch it.Type {
	case Structure:
		if depth >= MaxDepth {
			return Item{}, 0, &Error{off, "structures nested too deeply"}
		}
		if n%8 != 0 {
			return Item{}, 0, &Error{off + 4, "structure length not a multiple of 8"}
		}
		it.Items = []Item{}
		for pos := 0; pos < n; {
			c, m, err := decode(v[pos:], off+8+pos, depth+1)
			if err != nil {
				if e, ok := err.(*Error); ok && e.Reason == ErrShort.Error() {
					return Item{}, 0, &Error{e.Offset, "item overruns its structure"}
				}
				return Item{}, 0, err
			}
			it.Items = append(it.Items, c)
			pos += m
		}
	case Integer:
		it.Int = int64(int32(binary.BigEndian.Uint32(v)))
	case Enumeration, Interval:
		it.Int = int64(binary.BigEndian.Uint32(v))
	case LongInteger, DateTime:
		it.Int = int64(binary.BigEndian.Uint64(v))
	case Boolean:
		x := binary.BigEndian.Uint64(v)
		if x > 1 {
			return Item{}, 0, &Error{off + 8, "boolean neither 0 nor 1"}
		}
		it.Int = int64(x)
	case BigInteger:
		if n%8 != 0 {
			return Item{}, 0, &Error{off + 4, "big integer length not a multiple of 8"}
		}
		it.Bytes = v
	case TextString, ByteString:
		it.Bytes = v
	default:
		return Item{}, 0, &Error{off + 3, fmt.Sprintf("unknown type %#02x", byte(it.Type))}
	}
	return it, total, nil
}
