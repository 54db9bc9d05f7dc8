package s3

import (
	"strconv"
	"strings"
	"testing"
)

const listing = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated><Contents><Key>a &amp; b.txt</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&#34;0123456789abcdef0123456789abcdef&#34;</ETag><Size>65600</Size><Owner><ID>x</ID><DisplayName>y</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents><Contents>
  <Key>dir/c</Key>
  <ETag>&quot;fedcba9876543210fedcba9876543210-3&quot;</ETag>
  <Size>10</Size>
</Contents><CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes></ListBucketResult>`

func TestRewriteXML(t *testing.T) {
	var seen []string
	out, err := RewriteXML([]byte(listing), []string{"Contents"}, func(e *Entry) error {
		seen = append(seen, e.Fields["Key"]+"|"+e.Fields["ETag"]+"|"+e.Fields["Size"])
		n, _ := strconv.Atoi(e.Fields["Size"])
		e.Fields["Size"] = strconv.Itoa(n - 1)
		e.Fields["ETag"] = strings.TrimSuffix(e.Fields["ETag"], `"`) + `-0"`
		e.Fields["Owner"] = "ignored: unchanged children only are rewritten"
		delete(e.Fields, "Owner")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`a & b.txt|"0123456789abcdef0123456789abcdef"|65600`,
		`dir/c|"fedcba9876543210fedcba9876543210-3"|10`,
	}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("entries:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
	got := string(out)
	for _, s := range []string{
		`<Size>65599</Size>`, `<Size>9</Size>`,
		`<ETag>&#34;0123456789abcdef0123456789abcdef-0&#34;</ETag>`,
		`<Key>a &amp; b.txt</Key>`, `<Owner><ID>x</ID><DisplayName>y</DisplayName></Owner>`,
		`<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes>`,
		"<Contents>\n  <Key>dir/c</Key>",
		`xmlns="http://s3.amazonaws.com/doc/2006-03-01/"`,
	} {
		if !strings.Contains(got, s) {
			t.Errorf("output lacks %q:\n%s", s, got)
		}
	}
	// Unchanged documents come back as they were.
	same, err := RewriteXML([]byte(listing), []string{"Contents"}, func(*Entry) error { return nil })
	if err != nil || string(same) != listing {
		t.Fatalf("identity rewrite changed the document: %v", err)
	}
}

func TestRewriteXMLMalformed(t *testing.T) {
	for _, doc := range []string{
		`<a><Contents><Size>1</Size></a>`,
		`<a><Contents><Size>1</Size></Contents>`,
		`<!DOCTYPE x [<!ENTITY e "boom">]><a/>`,
		`<a>&unknown;</a>`,
	} {
		if _, err := RewriteXML([]byte(doc), []string{"Contents"}, func(*Entry) error { return nil }); err == nil {
			t.Errorf("accepted %q", doc)
		}
	}
}

func FuzzRewriteXML(f *testing.F) {
	f.Add([]byte(listing))
	f.Add([]byte(`<ListPartsResult><Part><PartNumber>1</PartNumber><ETag>"x"</ETag><Size>5</Size></Part></ListPartsResult>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		out, err := RewriteXML(doc, []string{"Contents", "Part"}, func(e *Entry) error {
			if _, ok := e.Fields["Size"]; ok {
				e.Fields["Size"] = "7"
			}
			return nil
		})
		if err != nil {
			return
		}
		// A rewritten document parses again and rewriting it again is
		// stable.
		again, err := RewriteXML(out, []string{"Contents", "Part"}, func(e *Entry) error {
			if _, ok := e.Fields["Size"]; ok {
				e.Fields["Size"] = "7"
			}
			return nil
		})
		if err != nil {
			t.Fatalf("rewritten document does not parse: %v\n%q", err, out)
		}
		if string(again) != string(out) {
			t.Fatalf("rewrite not idempotent:\n%q\n%q", out, again)
		}
	})
}
