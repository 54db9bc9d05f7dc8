package s3

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/proxy/s3err"
)

// S3's limits on the request documents s3seal reads.
const (
	// MaxDeleteObjects is the most keys one DeleteObjects request names.
	MaxDeleteObjects = 1000
	// MaxParts is the most parts of a multipart upload.
	MaxParts = 10000
	// maxDeleteBody bounds a DeleteObjects body: 1,000 keys of up to
	// 1,024 bytes, XML-escaped, with version ids and conditions.
	maxDeleteBody = 8 << 20
	// maxCompleteBody bounds a CompleteMultipartUpload body: 10,000 parts
	// with an ETag and a checksum each take about 2 MiB.
	maxCompleteBody = 4 << 20
	// maxField bounds one element's text in these documents.
	maxField = 4 << 10
)

// DeleteRequest is the body of a DeleteObjects request.
type DeleteRequest struct {
	Quiet   bool
	Objects []DeleteObject
}

// DeleteObject is one entry of a DeleteObjects request. The conditional
// fields are kept so that a request s3seal rewrites (leaving out keys the
// client may not delete) keeps its meaning for the others.
type DeleteObject struct {
	Key              string `xml:"Key"`
	VersionID        string `xml:"VersionId,omitempty"`
	ETag             string `xml:"ETag,omitempty"`
	LastModifiedTime string `xml:"LastModifiedTime,omitempty"`
	Size             string `xml:"Size,omitempty"`
}

// ParseDelete reads a DeleteObjects body as a stream, refusing it as soon
// as it breaks S3's limits (more than 1,000 keys, oversized fields, more
// than 8 MiB) or is not the document S3 expects. It returns the parsed
// request and the raw bytes it read (to forward unchanged when nothing is
// left out).
func ParseDelete(r io.Reader) (*DeleteRequest, []byte, error) {
	var raw bytes.Buffer
	var out DeleteRequest
	err := readDocument(io.TeeReader(r, &raw), "DeleteObjects", "Delete", maxDeleteBody, func(d *xml.Decoder, name string) error {
		switch name {
		case "Quiet":
			v, err := text(d)
			if err != nil {
				return err
			}
			out.Quiet = strings.EqualFold(strings.TrimSpace(v), "true")
		case "Object":
			if len(out.Objects) == MaxDeleteObjects {
				return malformed(fmt.Sprintf("A DeleteObjects request names at most %d keys.", MaxDeleteObjects))
			}
			o, err := deleteObject(d)
			if err != nil {
				return err
			}
			out.Objects = append(out.Objects, o)
		default:
			return errSkip
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(out.Objects) == 0 {
		return nil, nil, malformed("The DeleteObjects request names no keys.")
	}
	return &out, raw.Bytes(), nil
}

// errSkip tells readDocument to skip an element.
var errSkip = errors.New("skip")

// readDocument reads an XML request document as a stream: its root must be
// named root, it may not exceed limit bytes, and entry is called for each
// element directly or indirectly inside the root that is not consumed by an
// earlier call (returning errSkip skips the element). It stops at the first
// error.
func readDocument(r io.Reader, what, root string, limit int64, entry func(d *xml.Decoder, name string) error) error {
	lr := &io.LimitedReader{R: r, N: limit + 1}
	d := xml.NewDecoder(lr)
	d.Strict = true
	seenRoot := false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if lr.N <= 0 {
				return malformed(fmt.Sprintf("The %s request is larger than s3seal accepts (%d MiB).", what, limit>>20))
			}
			return passBodyError(err, malformed(fmt.Sprintf("The %s request is not well-formed XML.", what)))
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if !seenRoot {
			if se.Name.Local != root {
				return malformed(fmt.Sprintf("The %s request must be a <%s> document.", what, root))
			}
			seenRoot = true
			continue
		}
		if err := entry(d, se.Name.Local); err == errSkip {
			if err := d.Skip(); err != nil {
				return passBodyError(err, malformed(fmt.Sprintf("The %s request is not well-formed XML.", what)))
			}
		} else if err != nil {
			return err
		}
	}
	if !seenRoot {
		return malformed(fmt.Sprintf("The %s request must be a <%s> document.", what, root))
	}
	return nil
}

func deleteObject(d *xml.Decoder) (DeleteObject, error) {
	var o DeleteObject
	for {
		tok, err := d.Token()
		if err != nil {
			return o, passBodyError(err, malformed("The DeleteObjects request is not well-formed XML."))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			v, err := text(d)
			if err != nil {
				return o, err
			}
			switch t.Name.Local {
			case "Key":
				o.Key = v
			case "VersionId":
				o.VersionID = v
			case "ETag":
				o.ETag = v
			case "LastModifiedTime":
				o.LastModifiedTime = v
			case "Size":
				o.Size = v
			}
		case xml.EndElement:
			if o.Key == "" {
				return o, malformed("Every <Object> of a DeleteObjects request needs a <Key>.")
			}
			return o, nil
		}
	}
}

// Marshal returns the DeleteObjects document for objs (a subset of the
// request's objects), with the request's Quiet flag.
func (r *DeleteRequest) Marshal(objs []DeleteObject) []byte {
	type doc struct {
		XMLName xml.Name       `xml:"http://s3.amazonaws.com/doc/2006-03-01/ Delete"`
		Quiet   bool           `xml:"Quiet,omitempty"`
		Objects []DeleteObject `xml:"Object"`
	}
	b, err := xml.Marshal(doc{Quiet: r.Quiet, Objects: objs})
	if err != nil {
		panic("s3: internal error: " + err.Error())
	}
	return append([]byte(xml.Header), b...)
}

// CompletePart is one part of a CompleteMultipartUpload request.
type CompletePart struct {
	PartNumber int
	ETag       string
	// Checksums holds the part's checksum elements by name
	// ("ChecksumCRC32", ...), as sent.
	Checksums map[string]string
}

// ParseComplete reads a CompleteMultipartUpload body as a stream with S3's
// limits: at most 10,000 parts, each with a part number in 1..10000,
// fields of bounded size, at most 4 MiB in all. It fails at the first part
// beyond the limit, before reading the rest. It returns the parts and the
// raw bytes it read.
func ParseComplete(r io.Reader) ([]CompletePart, []byte, error) {
	var raw bytes.Buffer
	var parts []CompletePart
	err := readDocument(io.TeeReader(r, &raw), "CompleteMultipartUpload", "CompleteMultipartUpload", maxCompleteBody, func(d *xml.Decoder, name string) error {
		if name != "Part" {
			return errSkip
		}
		if len(parts) == MaxParts {
			return malformed(fmt.Sprintf("A CompleteMultipartUpload request lists at most %d parts.", MaxParts))
		}
		p, err := completePart(d)
		if err != nil {
			return err
		}
		parts = append(parts, p)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(parts) == 0 {
		return nil, nil, malformed("The CompleteMultipartUpload request names no parts.")
	}
	return parts, raw.Bytes(), nil
}

func completePart(d *xml.Decoder) (CompletePart, error) {
	p := CompletePart{}
	for {
		tok, err := d.Token()
		if err != nil {
			return p, passBodyError(err, malformed("The CompleteMultipartUpload request is not well-formed XML."))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			v, err := text(d)
			if err != nil {
				return p, err
			}
			switch name := t.Name.Local; {
			case name == "PartNumber":
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err == nil && n < 1 {
					return p, s3err.New("InvalidArgument", 400, "PartNumber must be >= 1")
				}
				if err != nil || n > MaxParts {
					return p, s3err.New("InvalidArgument", 400, fmt.Sprintf("Part number must be an integer between 1 and %d, inclusive.", MaxParts))
				}
				p.PartNumber = n
			case name == "ETag":
				p.ETag = v
			case strings.HasPrefix(name, "Checksum"):
				if p.Checksums == nil {
					p.Checksums = map[string]string{}
				}
				p.Checksums[name] = strings.TrimSpace(v)
			}
		case xml.EndElement:
			if p.PartNumber == 0 {
				return p, malformed("Every <Part> needs a <PartNumber>.")
			}
			return p, nil
		}
	}
}

// text reads the character data of the element just opened, up to its
// end, refusing nested elements and text over maxField bytes.
func text(d *xml.Decoder) (string, error) {
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", passBodyError(err, malformed("The request document is not well-formed XML."))
		}
		switch t := tok.(type) {
		case xml.CharData:
			if b.Len()+len(t) > maxField {
				return "", malformed("An element of the request document is too long.")
			}
			b.Write(t)
		case xml.EndElement:
			return b.String(), nil
		case xml.StartElement:
			return "", malformed("The request document has an element where text was expected.")
		}
	}
}

// passBodyError returns err itself when it is the body's own failure (a
// signature or checksum that did not verify, a stalled client), which the
// client must see, and def for XML syntax errors.
func passBodyError(err error, def *s3err.Error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
		return def
	}
	if _, ok := s3err.As(err); ok {
		return err
	}
	var ue xml.UnmarshalError
	if errors.As(err, &ue) {
		return def
	}
	return err
}

// malformed is S3's MalformedXML, with what was wrong as its cause (for
// the log): S3 answers every schema fault with the one message.
func malformed(msg string) *s3err.Error { return s3err.MalformedXML.WithCause(errors.New(msg)) }
