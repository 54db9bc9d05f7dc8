package s3

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseDelete(t *testing.T) {
	doc := `<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>
<Object><Key>a&amp;b</Key><VersionId>v1</VersionId></Object>
<Object><Key>dir/c</Key><ETag>"e"</ETag></Object></Delete>`
	req, raw, err := ParseDelete(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != doc {
		t.Errorf("raw bytes not kept")
	}
	if !req.Quiet || len(req.Objects) != 2 || req.Objects[0].Key != "a&b" || req.Objects[0].VersionID != "v1" || req.Objects[1].ETag != `"e"` {
		t.Fatalf("parsed %+v", req)
	}
	again, _, err := ParseDelete(strings.NewReader(string(req.Marshal(req.Objects[1:]))))
	if err != nil || len(again.Objects) != 1 || again.Objects[0] != req.Objects[1] || !again.Quiet {
		t.Fatalf("marshal round trip: %+v %v", again, err)
	}
}

func TestParseDeleteRefuses(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		b.WriteString("<Delete>")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "<Object><Key>k%d</Key></Object>", i)
		}
		b.WriteString("</Delete>")
		return b.String()
	}
	cases := map[string]string{
		"empty":        "",
		"not xml":      "garbage",
		"wrong root":   "<Remove><Object><Key>k</Key></Object></Remove>",
		"no keys":      "<Delete></Delete>",
		"keyless":      "<Delete><Object><VersionId>v</VersionId></Object></Delete>",
		"truncated":    "<Delete><Object><Key>k</Key>",
		"1001 keys":    many(1001),
		"nested key":   "<Delete><Object><Key><X>k</X></Key></Object></Delete>",
		"huge field":   "<Delete><Object><Key>" + strings.Repeat("a", 5000) + "</Key></Object></Delete>",
		"entity bomb":  `<!DOCTYPE d [<!ENTITY a "aaaa">]><Delete><Object><Key>&a;</Key></Object></Delete>`,
		"unclosed tag": "<Delete><Object><Key>k</Object></Delete>",
	}
	for name, doc := range cases {
		if _, _, err := ParseDelete(strings.NewReader(doc)); err == nil || !strings.HasPrefix(err.Error(), "MalformedXML") {
			t.Errorf("%s: %v, want MalformedXML", name, err)
		}
	}
	if _, _, err := ParseDelete(strings.NewReader(many(1000))); err != nil {
		t.Errorf("1000 keys refused: %v", err)
	}
}

// A failing body (a bad chunk signature) reaches the caller as itself.
func TestParseBodiesPassReaderErrors(t *testing.T) {
	boom := errors.New("chunk signature mismatch")
	r := io.MultiReader(strings.NewReader("<Delete><Object><Key>k"), iotest.ErrReader(boom))
	if _, _, err := ParseDelete(r); !errors.Is(err, boom) {
		t.Errorf("ParseDelete: %v, want the reader's error", err)
	}
	r = io.MultiReader(strings.NewReader("<CompleteMultipartUpload><Part>"), iotest.ErrReader(boom))
	if _, _, err := ParseComplete(r); !errors.Is(err, boom) {
		t.Errorf("ParseComplete: %v, want the reader's error", err)
	}
}

func TestParseComplete(t *testing.T) {
	doc := `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
<Part><ETag>"a"</ETag><PartNumber>1</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>
<Part><PartNumber>2</PartNumber><ETag>"b"</ETag></Part></CompleteMultipartUpload>`
	parts, _, err := ParseComplete(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].PartNumber != 1 || parts[0].ETag != `"a"` || parts[0].Checksums["ChecksumCRC32"] != "AAAAAA==" || parts[1].PartNumber != 2 {
		t.Fatalf("parsed %+v", parts)
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// More parts than S3 allows are refused at the first part beyond the limit,
// before the rest of the body is read.
func TestParseCompleteStopsAtLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("<CompleteMultipartUpload>")
	for i := 1; i <= 45000; i++ {
		fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>\"0123456789abcdef0123456789abcdef\"</ETag></Part>", min(i, MaxParts))
	}
	b.WriteString("</CompleteMultipartUpload>")
	cr := &countingReader{r: strings.NewReader(b.String())}
	_, _, err := ParseComplete(cr)
	if err == nil || !strings.HasPrefix(err.Error(), "MalformedXML") || !strings.Contains(err.Error(), "at most 10000 parts") {
		t.Fatalf("45,000 parts: %v", err)
	}
	if cr.n > b.Len()/3 {
		t.Errorf("read %d of %d bytes before refusing", cr.n, b.Len())
	}
	for name, doc := range map[string]string{
		"part 0":      "<CompleteMultipartUpload><Part><PartNumber>0</PartNumber></Part></CompleteMultipartUpload>",
		"part 10001":  "<CompleteMultipartUpload><Part><PartNumber>10001</PartNumber></Part></CompleteMultipartUpload>",
		"no number":   "<CompleteMultipartUpload><Part><ETag>x</ETag></Part></CompleteMultipartUpload>",
		"no parts":    "<CompleteMultipartUpload></CompleteMultipartUpload>",
		"wrong root":  "<Complete><Part><PartNumber>1</PartNumber></Part></Complete>",
		"not a digit": "<CompleteMultipartUpload><Part><PartNumber>1e3</PartNumber></Part></CompleteMultipartUpload>",
	} {
		if _, _, err := ParseComplete(strings.NewReader(doc)); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func FuzzParseDelete(f *testing.F) {
	f.Add("<Delete><Quiet>false</Quiet><Object><Key>k</Key><VersionId>v</VersionId></Object></Delete>")
	f.Add("<Delete><Object><Key>a/b</Key></Object><Object><Key>c</Key></Object></Delete>")
	f.Fuzz(func(t *testing.T, doc string) {
		req, _, err := ParseDelete(strings.NewReader(doc))
		if err != nil {
			return
		}
		if len(req.Objects) == 0 || len(req.Objects) > MaxDeleteObjects {
			t.Fatalf("accepted %d objects", len(req.Objects))
		}
		again, _, err := ParseDelete(strings.NewReader(string(req.Marshal(req.Objects))))
		if err != nil {
			t.Fatalf("re-marshalled document refused: %v", err)
		}
		if len(again.Objects) != len(req.Objects) || again.Quiet != req.Quiet {
			t.Fatalf("round trip changed the request")
		}
		for i := range req.Objects {
			if again.Objects[i] != req.Objects[i] {
				t.Fatalf("object %d: %+v != %+v", i, again.Objects[i], req.Objects[i])
			}
		}
	})
}
