package proxy

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"

	"github.com/s3seal/s3seal/proxy/s3"
)

// Multipart ETags under sse-kms, sse-c and envelope.
//
// Tools that verify multipart uploads (rclone with multipart ETag checks,
// as for AWS and MinIO) compare CompleteMultipartUpload's ETag with the
// MD5 of the MD5s of the parts they sent, followed by -N. A store that
// encrypts with SSE-KMS or SSE-C answers another ETag. When a client sends
// Content-MD5 with a part (which the store verifies on the plaintext), the
// part ETag s3seal returns carries that MD5 beside the store's part ETag,
// "<md5 hex>.<store ETag>"; when every part of CompleteMultipartUpload
// carries one, s3seal sends the store its own ETags and answers with the
// plaintext form. It costs no hashing (the MD5 is the client's, checked by
// the store) and keeps no state. Other responses about the object show
// the store's ETag, which is also what ListParts shows for parts.
//
// Envelope mode (format version 2) uses the same form around its own part
// ETag, "<md5 hex>.<store ETag>-s<salt hex>" (envelope_v2.go): s3seal
// verifies the client's Content-MD5 on the plaintext itself, since the
// store sees ciphertext.

// ssePartETag returns the client's part ETag for a part whose store ETag
// is etag, uploaded with Content-MD5 contentMD5 ("" if none).
func ssePartETag(contentMD5, etag string) string {
	sum, err := base64.StdEncoding.Strict().DecodeString(contentMD5)
	if err != nil || len(sum) != md5.Size || etag == "" {
		return etag
	}
	return `"` + hex.EncodeToString(sum) + "." + strings.Trim(etag, `"`) + `"`
}

// splitSSEPartETag undoes ssePartETag: the part's MD5 and the store's ETag
// (quoted), or ok=false for an ETag without an MD5.
func splitSSEPartETag(etag string) (sum []byte, store string, ok bool) {
	v := strings.Trim(etag, `"`)
	m, rest, found := strings.Cut(v, ".")
	if !found || len(m) != 2*md5.Size || rest == "" {
		return nil, etag, false
	}
	sum, err := hex.DecodeString(m)
	if err != nil {
		return nil, etag, false
	}
	return sum, `"` + rest + `"`, true
}

// sseCompleteDoc rewrites a CompleteMultipartUpload document's part ETags
// to the store's and returns it with the ETag to answer with: the
// plaintext form when every part carries its MD5, else "" (the store's
// answer stands).
func sseCompleteDoc(doc []byte) ([]byte, string, error) {
	all, n := true, 0
	var sums [][]byte
	out, err := s3.RewriteXML(doc, []string{"Part"}, func(e *s3.Entry) error {
		v, ok := e.Fields["ETag"]
		if !ok {
			return nil
		}
		n++
		sum, store, ok := splitSSEPartETag(v)
		if !ok {
			all = false
			return nil
		}
		sums = append(sums, sum)
		e.Fields["ETag"] = store
		return nil
	})
	if err != nil || n == 0 || !all {
		return out, "", err
	}
	return out, multipartMD5ETag(sums), nil
}

// multipartMD5ETag is the ETag S3 gives a multipart object whose parts
// have the MD5s sums: the MD5 of their concatenation, "-N" (quoted).
func multipartMD5ETag(sums [][]byte) string {
	h := md5.New()
	for _, s := range sums {
		h.Write(s)
	}
	return `"` + hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(sums)) + `"`
}

// ssePartResponse puts the part's MD5 into a successful UploadPart answer.
func ssePartResponse(q *request, resp *http.Response) {
	if resp.StatusCode != http.StatusOK {
		return
	}
	if cm := q.r.Header.Get("Content-Md5"); cm != "" {
		if v := resp.Header.Get("ETag"); v != "" {
			resp.Header.Set("ETag", ssePartETag(cm, v))
		}
	}
}
