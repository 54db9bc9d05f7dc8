package s3

import (
	"bytes"
	"encoding/xml"
	"strconv"
	"strings"
)

// rewriteFast is RewriteXML for the documents stores actually send: entry
// elements without attributes, children that are plain text (or, like
// Owner, hold elements of their own), no CDATA, comments or directives. It
// scans bytes instead of tokenising, which makes listings several times
// cheaper. It reports ok=false for anything else, and RewriteXML then takes
// the general path; a fuzz test holds the two to the same output.
func rewriteFast(doc []byte, entries []string, fn func(e *Entry) error) (out []byte, ok bool, err error) {
	if bytes.Contains(doc, []byte("<!")) || bytes.Contains(doc, []byte("]]>")) || !wellFormed(doc) {
		return nil, false, nil
	}
	type edit struct {
		start, end int
		text       string
	}
	type found struct {
		e     *Entry
		start int
		spans map[string][2]int
		// elem is the span of the whole element, tags included.
		elem [2]int
	}
	// First read every entry, so that a document the fast path declines
	// has not been shown to fn yet.
	var all []found
	for _, name := range entries {
		open := "<" + name + ">"
		closeTag := "</" + name + ">"
		for from := 0; ; {
			i := bytes.Index(doc[from:], []byte(open))
			if i < 0 {
				// An entry with attributes or spaces in its tag is not
				// for the fast path.
				for _, sep := range []string{" ", "\t", "\n", "\r", "/"} {
					if bytes.Contains(doc[from:], []byte("<"+name+sep)) {
						return nil, false, nil
					}
				}
				break
			}
			start := from + i + len(open)
			j := bytes.Index(doc[start:], []byte(closeTag))
			if j < 0 {
				return nil, false, nil
			}
			end := start + j
			inner := doc[start:end]
			if bytes.Contains(inner, []byte(open)) {
				return nil, false, nil // nested entries: general path
			}
			e := &Entry{Name: name, Fields: map[string]string{}}
			spans, good := children(inner, e.Fields)
			if !good {
				return nil, false, nil
			}
			all = append(all, found{e, start, spans, [2]int{from + i, end + len(closeTag)}})
			from = end + len(closeTag)
		}
	}
	sortEdits(all, func(i int) int64 { return int64(all[i].start) })
	var edits []edit
	for _, f := range all {
		old := make(map[string]string, len(f.e.Fields))
		for k, v := range f.e.Fields {
			old[k] = v
		}
		if err := fn(f.e); err != nil {
			return nil, true, err
		}
		if f.e.Drop {
			edits = append(edits, edit{f.elem[0], f.elem[1], ""})
			continue
		}
		for k, v := range f.e.Fields {
			if sp, ok := f.spans[k]; ok && old[k] != v {
				edits = append(edits, edit{f.start + sp[0], f.start + sp[1], v})
			}
		}
	}
	if len(edits) == 0 {
		return doc, true, nil
	}
	sortEdits(edits, func(i int) int64 { return int64(edits[i].start) })
	var b bytes.Buffer
	b.Grow(len(doc) + 16*len(edits))
	last := 0
	for _, e := range edits {
		if e.start < last {
			return nil, false, nil
		}
		b.Write(doc[last:e.start])
		_ = xml.EscapeText(&b, []byte(e.text))
		last = e.end
	}
	b.Write(doc[last:])
	return b.Bytes(), true, nil
}

// children reads the direct children of an entry's content: their
// unescaped text by name (for a child holding elements, the text of those
// elements, as the general path gives) and the spans of that text. It
// reports false for content it does not handle.
func children(inner []byte, fields map[string]string) (map[string][2]int, bool) {
	spans := map[string][2]int{}
	p := 0
	for p < len(inner) {
		lt := bytes.IndexByte(inner[p:], '<')
		if lt < 0 {
			return spans, len(bytes.TrimSpace(inner[p:])) == 0
		}
		if len(bytes.TrimSpace(inner[p:p+lt])) != 0 {
			return nil, false // text between children
		}
		p += lt
		gt := bytes.IndexByte(inner[p:], '>')
		if gt < 0 {
			return nil, false
		}
		tag := inner[p+1 : p+gt]
		if len(tag) == 0 || tag[0] == '/' || tag[0] == '?' || bytes.ContainsAny(tag, " \t\r\n/=\"'") {
			return nil, false
		}
		name := string(tag)
		textStart := p + gt + 1
		closeTag := "</" + name + ">"
		c := bytes.Index(inner[textStart:], []byte(closeTag))
		if c < 0 {
			return nil, false
		}
		textEnd := textStart + c
		content := inner[textStart:textEnd]
		if bytes.Contains(content, []byte("<"+name+">")) || bytes.Contains(content, []byte("<"+name+" ")) {
			return nil, false // a child nested in one of its name
		}
		text, ok := textOf(content)
		if !ok {
			return nil, false
		}
		fields[name] = text
		spans[name] = [2]int{textStart, textEnd}
		p = textEnd + len(closeTag)
	}
	return spans, true
}

// textOf returns the unescaped character data of content, which may hold
// elements (their text is included, their tags are not).
func textOf(content []byte) (string, bool) {
	if bytes.IndexByte(content, '<') < 0 && bytes.IndexByte(content, '&') < 0 {
		return string(content), true
	}
	var sb strings.Builder
	for len(content) > 0 {
		lt := bytes.IndexByte(content, '<')
		seg := content
		if lt >= 0 {
			seg = content[:lt]
		}
		if !unescapeTo(&sb, seg) {
			return "", false
		}
		if lt < 0 {
			break
		}
		gt := bytes.IndexByte(content[lt:], '>')
		if gt < 0 {
			return "", false
		}
		content = content[lt+gt+1:]
	}
	return sb.String(), true
}

// unescapeTo appends text with its entity and character references
// resolved, as an XML decoder would.
func unescapeTo(sb *strings.Builder, text []byte) bool {
	for {
		i := bytes.IndexByte(text, '&')
		if i < 0 {
			sb.Write(text)
			return true
		}
		sb.Write(text[:i])
		text = text[i+1:]
		j := bytes.IndexByte(text, ';')
		if j <= 0 {
			return false
		}
		ref := string(text[:j])
		text = text[j+1:]
		switch ref {
		case "amp":
			sb.WriteByte('&')
		case "lt":
			sb.WriteByte('<')
		case "gt":
			sb.WriteByte('>')
		case "quot":
			sb.WriteByte('"')
		case "apos":
			sb.WriteByte('\'')
		default:
			if len(ref) < 2 || ref[0] != '#' {
				return false
			}
			base, digits := 10, ref[1:]
			if digits[0] == 'x' {
				base, digits = 16, digits[1:]
			}
			n, err := strconv.ParseUint(digits, base, 32)
			if err != nil || !validXMLChar(rune(n)) {
				return false
			}
			sb.WriteRune(rune(n))
		}
	}
}

// validXMLChar reports the characters XML allows in documents.
func validXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// wellFormed is a cheap structural check of a document for the fast path:
// balanced tags and known entities. Anything it does not accept goes to the
// general path, which decides.
func wellFormed(doc []byte) bool {
	var stack [][]byte
	for p := 0; p < len(doc); {
		lt := bytes.IndexByte(doc[p:], '<')
		text := doc[p:]
		if lt >= 0 {
			text = doc[p : p+lt]
		}
		if !entitiesOK(text) || (len(stack) == 0 && len(bytes.TrimSpace(text)) != 0) {
			return false
		}
		if lt < 0 {
			break
		}
		p += lt
		gt := bytes.IndexByte(doc[p:], '>')
		if gt < 0 {
			return false
		}
		tag := doc[p+1 : p+gt]
		p += gt + 1
		switch {
		case len(tag) == 0:
			return false
		case tag[0] == '?':
			if len(stack) != 0 || tag[len(tag)-1] != '?' {
				return false
			}
		case tag[0] == '/':
			if len(stack) == 0 || !bytes.Equal(stack[len(stack)-1], tag[1:]) {
				return false
			}
			stack = stack[:len(stack)-1]
		default:
			self := tag[len(tag)-1] == '/'
			name := tag
			if i := bytes.IndexAny(tag, " \t\r\n/"); i >= 0 {
				name = tag[:i]
			}
			if len(name) == 0 || bytes.ContainsAny(name, "<&\"'=") {
				return false
			}
			if !self {
				stack = append(stack, name)
			}
		}
	}
	return len(stack) == 0
}

// entitiesOK reports whether every & in text starts a known entity or a
// character reference.
func entitiesOK(text []byte) bool {
	for {
		i := bytes.IndexByte(text, '&')
		if i < 0 {
			return true
		}
		text = text[i+1:]
		j := bytes.IndexByte(text, ';')
		if j <= 0 {
			return false
		}
		ref := string(text[:j])
		switch {
		case ref == "amp" || ref == "lt" || ref == "gt" || ref == "quot" || ref == "apos":
		case len(ref) > 1 && ref[0] == '#':
			digits, base := ref[1:], "0123456789"
			if digits[0] == 'x' {
				digits, base = digits[1:], "0123456789abcdefABCDEF"
			}
			if digits == "" || strings.Trim(digits, base) != "" {
				return false
			}
		default:
			return false
		}
		text = text[j+1:]
	}
}
