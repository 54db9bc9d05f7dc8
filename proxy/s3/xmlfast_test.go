package s3

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// rewriteSizes is the kind of callback listings use; it also drops
// entries whose key ends in 7, as listings drop keys a client may not see.
func rewriteSizes(e *Entry) error {
	if strings.HasSuffix(e.Fields["Key"], "7.bin") || strings.HasSuffix(e.Fields["Key"], "7") {
		e.Drop = true
		return nil
	}
	if n, err := strconv.Atoi(e.Fields["Size"]); err == nil {
		e.Fields["Size"] = strconv.Itoa(n/2 + len(e.Fields["Key"]))
	}
	if v, ok := e.Fields["ETag"]; ok && !strings.Contains(v, "-") {
		e.Fields["ETag"] = v + "-0"
	}
	return nil
}

func bigListing(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><Prefix></Prefix><KeyCount>` + strconv.Itoa(n) + `</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `<Contents><Key>dir/file &amp; %05d.bin</Key><LastModified>2026-11-27T05:00:00.000Z</LastModified><ETag>&#34;%032x&#34;</ETag><Size>%d</Size><Owner><ID>o</ID><DisplayName>d</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Contents>`, i, i, 65536+i)
	}
	b.WriteString(`</ListBucketResult>`)
	return b.Bytes()
}

func TestRewriteFastMatchesGeneral(t *testing.T) {
	docs := [][]byte{[]byte(listing), bigListing(50),
		[]byte(`<ListVersionsResult><Version><Key>k</Key><VersionId>v1</VersionId><ETag>"e"</ETag><Size>10</Size></Version><DeleteMarker><Key>k</Key></DeleteMarker></ListVersionsResult>`),
		[]byte(`<ListPartsResult><UploadId>u</UploadId><Part><PartNumber>1</PartNumber><ETag>"x"</ETag><Size>5</Size></Part></ListPartsResult>`),
	}
	for i, doc := range docs {
		fast, ok, err := rewriteFast(doc, []string{"Contents", "Version", "Part"}, rewriteSizes)
		if !ok || err != nil {
			t.Fatalf("doc %d: fast path declined (%v)", i, err)
		}
		general, err := rewriteGeneral(doc, []string{"Contents", "Version", "Part"}, rewriteSizes)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(general, []byte("7.bin<")) {
			t.Errorf("doc %d: dropped entry still there", i)
		}
		if !bytes.Equal(fast, general) {
			t.Errorf("doc %d: paths differ:\nfast:    %s\ngeneral: %s", i, fast, general)
		}
	}
}

func FuzzRewriteFast(f *testing.F) {
	f.Add([]byte(listing))
	f.Add(bigListing(2))
	f.Add([]byte(`<a><Contents><Size>1</Size><Owner><ID>x</ID></Owner></Contents></a>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		general, gerr := rewriteGeneral(doc, []string{"Contents", "Part"}, rewriteSizes)
		fast, ok, ferr := rewriteFast(doc, []string{"Contents", "Part"}, rewriteSizes)
		if !ok || gerr != nil {
			return // declined, or a document the general path refuses
		}
		if ferr != nil || !bytes.Equal(fast, general) {
			t.Fatalf("fast path differs (err %v):\ndoc:     %q\nfast:    %q\ngeneral: %q", ferr, doc, fast, general)
		}
	})
}

func BenchmarkRewriteListing(b *testing.B) {
	doc := bigListing(1000)
	for _, c := range []struct {
		name string
		fn   func([]byte, []string, func(*Entry) error) ([]byte, error)
	}{
		{"fast", func(d []byte, e []string, fn func(*Entry) error) ([]byte, error) {
			out, _, err := rewriteFast(d, e, fn)
			return out, err
		}},
		{"general", rewriteGeneral},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if _, err := c.fn(doc, []string{"Contents"}, rewriteSizes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
