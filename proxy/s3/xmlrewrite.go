package s3

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Entry is one repeated element of an S3 XML document that s3seal rewrites:
// an object in a listing (Contents, Version), a part (Part), or a result
// (CopyObjectResult, CompleteMultipartUploadResult...). Fields holds the
// text of the entry's direct children by element name (XML-unescaped);
// setting Fields[name] to a new value replaces that child's text. Children
// that did not exist are not added.
type Entry struct {
	// Name is the element's name, e.g. "Contents".
	Name   string
	Fields map[string]string
	// Drop, set by the callback, removes the whole element from the
	// document (a listing entry the client may not see).
	Drop bool
}

// maxRewriteDoc bounds the XML documents s3seal rewrites (listings of 1,000
// keys are a few hundred KiB).
const maxRewriteDoc = 32 << 20

// ErrDocumentTooLarge is returned for XML documents above the rewrite limit.
var ErrDocumentTooLarge = errors.New("s3: XML document too large to rewrite")

// RewriteXML calls fn for every element named in entries (at any depth),
// with the text of its direct children, and returns the document with the
// children fn changed replaced. Everything else, including whitespace,
// namespaces and the XML declaration, is copied byte for byte. fn may return
// an error to abort the rewrite.
func RewriteXML(doc []byte, entries []string, fn func(e *Entry) error) ([]byte, error) {
	if len(doc) > maxRewriteDoc {
		return nil, ErrDocumentTooLarge
	}
	if out, ok, err := rewriteFast(doc, entries, fn); ok {
		return out, err
	}
	return rewriteGeneral(doc, entries, fn)
}

// rewriteGeneral is RewriteXML by tokenising the document.
func rewriteGeneral(doc []byte, entries []string, fn func(e *Entry) error) ([]byte, error) {
	want := make(map[string]bool, len(entries))
	for _, e := range entries {
		want[e] = true
	}
	type span struct{ start, end int64 }
	type open struct {
		entry *Entry
		spans map[string]span // child name -> text span
		depth int
		start int64 // offset of the entry's start tag
	}
	type edit struct {
		span
		text string
	}
	var (
		edits []edit
		stack []open // entries being read, innermost last
		depth int
		// child text being read: element name and start offset
		child      string
		childStart int64
		childText  strings.Builder
	)
	dec := xml.NewDecoder(bytes.NewReader(doc))
	dec.Strict = true
	for {
		before := dec.InputOffset()
		tok, err := dec.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("s3: malformed XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if want[t.Name.Local] {
				stack = append(stack, open{entry: &Entry{Name: t.Name.Local, Fields: map[string]string{}}, spans: map[string]span{}, depth: depth, start: before})
				continue
			}
			if n := len(stack); n > 0 && depth == stack[n-1].depth+1 {
				child = t.Name.Local
				childStart = dec.InputOffset()
				childText.Reset()
			}
		case xml.CharData:
			if child != "" {
				childText.Write(t)
			}
		case xml.EndElement:
			if n := len(stack); n > 0 {
				top := &stack[n-1]
				switch {
				case depth == top.depth+1 && child == t.Name.Local:
					top.entry.Fields[child] = childText.String()
					top.spans[child] = span{childStart, before}
					child = ""
				case depth == top.depth:
					old := make(map[string]string, len(top.entry.Fields))
					for k, v := range top.entry.Fields {
						old[k] = v
					}
					if err := fn(top.entry); err != nil {
						return nil, err
					}
					if top.entry.Drop {
						edits = append(edits, edit{span{top.start, dec.InputOffset()}, ""})
						stack = stack[:n-1]
						break
					}
					for k, v := range top.entry.Fields {
						if sp, ok := top.spans[k]; ok && old[k] != v {
							edits = append(edits, edit{sp, v})
						}
					}
					stack = stack[:n-1]
				}
			}
			depth--
		case xml.Directive:
			return nil, errors.New("s3: XML directives are not accepted")
		}
	}
	if depth != 0 || len(stack) != 0 {
		return nil, errors.New("s3: malformed XML: unclosed elements")
	}
	if len(edits) == 0 {
		return doc, nil
	}
	var out bytes.Buffer
	out.Grow(len(doc) + 16*len(edits))
	last := int64(0)
	// Edits are recorded at entry ends; children of one entry are in
	// document order within it, entries in order of their ends. Sort by
	// start to splice.
	sortEdits(edits, func(i int) int64 { return edits[i].start })
	for _, e := range edits {
		if e.start < last {
			return nil, errors.New("s3: internal error: overlapping XML edits")
		}
		out.Write(doc[last:e.start])
		_ = xml.EscapeText(&out, []byte(e.text))
		last = e.end
	}
	out.Write(doc[last:])
	return out.Bytes(), nil
}

// sortEdits is an insertion sort by key; edit lists are nearly sorted.
func sortEdits[T any](s []T, key func(i int) int64) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && key(j) < key(j-1); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
