package rewrap

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3seal/s3seal/proxy/upstream"
)

// Doer sends signed raw requests to the store (*upstream.Client).
type Doer interface {
	Do(ctx context.Context, r *upstream.Request) (*http.Response, error)
}

// S3Store is a Store on an S3 API: aws-sdk-go-v2 for most requests, and
// raw requests for ListObjectVersions, whose answer interleaves versions
// and delete markers in an order the SDK's output does not keep.
type S3Store struct {
	c   *s3.Client
	raw Doer
}

var _ Store = (*S3Store)(nil)

// NewS3Store returns a Store using client and raw, which must reach the
// same store with the same credentials. raw may be nil when versions are
// never listed (Config.AllVersions unset).
func NewS3Store(client *s3.Client, raw Doer) *S3Store {
	return &S3Store{c: client, raw: raw}
}

func storeErr(op string, err error) error {
	if err == nil {
		return nil
	}
	se := &StoreError{Op: op, Err: err}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		se.Status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		se.Code = ae.ErrorCode()
	}
	return se
}

// Versioning implements Store.
func (s *S3Store) Versioning(ctx context.Context, bucket string) (string, error) {
	out, err := s.c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: &bucket})
	if err != nil {
		return "", storeErr("GetBucketVersioning", err)
	}
	return string(out.Status), nil
}

// List implements Store.
func (s *S3Store) List(ctx context.Context, bucket, prefix, after string, fn func(string) error) error {
	in := &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(prefix)}
	if after != "" {
		in.StartAfter = aws.String(after)
	}
	p := s3.NewListObjectsV2Paginator(s.c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return storeErr("ListObjectsV2", err)
		}
		for _, o := range page.Contents {
			if err := fn(aws.ToString(o.Key)); err != nil {
				return err
			}
		}
	}
	return nil
}

type listVersionsResult struct {
	IsTruncated         bool   `xml:"IsTruncated"`
	EncodingType        string `xml:"EncodingType"`
	NextKeyMarker       string `xml:"NextKeyMarker"`
	NextVersionIDMarker string `xml:"NextVersionIdMarker"`
	// Entries are the Version and DeleteMarker elements in document order
	// (and the other elements, which are ignored).
	Entries []versionElement `xml:",any"`
}

type versionElement struct {
	XMLName   xml.Name
	Key       string `xml:"Key"`
	VersionID string `xml:"VersionId"`
	ETag      string `xml:"ETag"`
	Size      int64  `xml:"Size"`
}

// ListVersions implements Store.
func (s *S3Store) ListVersions(ctx context.Context, bucket, prefix, after string, fn func(string, []Entry) error) error {
	keyMarker, versionMarker := after, ""
	var cur string
	var entries []Entry
	flush := func() error {
		if len(entries) == 0 {
			return nil
		}
		e := entries
		entries = nil
		return fn(cur, e)
	}
	for {
		q := url.Values{"versions": {""}, "encoding-type": {"url"}}
		if prefix != "" {
			q.Set("prefix", prefix)
		}
		if keyMarker != "" {
			q.Set("key-marker", keyMarker)
		}
		if versionMarker != "" {
			q.Set("version-id-marker", versionMarker)
		}
		res, err := s.listVersionsPage(ctx, bucket, q)
		if err != nil {
			return err
		}
		dec := func(v string) (string, error) {
			if !strings.EqualFold(res.EncodingType, "url") {
				return v, nil
			}
			return url.QueryUnescape(v)
		}
		for _, el := range res.Entries {
			marker := el.XMLName.Local == "DeleteMarker"
			if !marker && el.XMLName.Local != "Version" {
				continue
			}
			key, err := dec(el.Key)
			if err != nil {
				return &StoreError{Op: "ListObjectVersions", Err: fmt.Errorf("undecodable key %q", el.Key)}
			}
			if key != cur {
				if err := flush(); err != nil {
					return err
				}
				cur = key
			}
			entries = append(entries, Entry{VersionID: el.VersionID, DeleteMarker: marker, ETag: el.ETag, Size: el.Size})
		}
		if !res.IsTruncated {
			return flush()
		}
		next, err := dec(res.NextKeyMarker)
		if err != nil || next == "" && res.NextVersionIDMarker == "" {
			return &StoreError{Op: "ListObjectVersions", Err: errors.New("a truncated listing without a usable next marker")}
		}
		if next == keyMarker && res.NextVersionIDMarker == versionMarker {
			return &StoreError{Op: "ListObjectVersions", Err: errors.New("the listing does not advance")}
		}
		keyMarker, versionMarker = next, res.NextVersionIDMarker
	}
}

func (s *S3Store) listVersionsPage(ctx context.Context, bucket string, q url.Values) (*listVersionsResult, error) {
	if s.raw == nil {
		return nil, &StoreError{Op: "ListObjectVersions", Err: errors.New("no raw client to list versions with")}
	}
	resp, err := s.raw.Do(ctx, &upstream.Request{Method: http.MethodGet, Bucket: bucket, Query: q, Header: http.Header{}})
	if err != nil {
		return nil, &StoreError{Op: "ListObjectVersions", Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, &StoreError{Op: "ListObjectVersions", Status: resp.StatusCode, Err: err}
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		}
		_ = xml.Unmarshal(body, &e)
		var cause error
		if e.Message != "" {
			cause = errors.New(e.Message)
		}
		return nil, &StoreError{Op: "ListObjectVersions", Status: resp.StatusCode, Code: e.Code, Err: cause}
	}
	var res listVersionsResult
	if err := xml.Unmarshal(body, &res); err != nil {
		return nil, &StoreError{Op: "ListObjectVersions", Status: resp.StatusCode, Err: err}
	}
	return &res, nil
}

// ssec returns the algorithm, base64 key and base64 key MD5 of an SSE-C
// key.
func ssec(k *[32]byte) (alg, key, sum *string) {
	if k == nil {
		return nil, nil, nil
	}
	m := md5.Sum(k[:])
	return aws.String("AES256"), aws.String(base64.StdEncoding.EncodeToString(k[:])), aws.String(base64.StdEncoding.EncodeToString(m[:]))
}

func optional(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// Head implements Store.
func (s *S3Store) Head(ctx context.Context, in HeadInput) (*Object, error) {
	hi := &s3.HeadObjectInput{Bucket: &in.Bucket, Key: &in.Key, VersionId: optional(in.VersionID), IfMatch: optional(in.IfMatch)}
	if in.PartNumber > 0 {
		hi.PartNumber = aws.Int32(int32(in.PartNumber))
	}
	hi.SSECustomerAlgorithm, hi.SSECustomerKey, hi.SSECustomerKeyMD5 = ssec(in.SSECKey)
	out, err := s.c.HeadObject(ctx, hi)
	if err != nil {
		return nil, storeErr("HeadObject", err)
	}
	o := &Object{
		Key:        in.Key,
		VersionID:  aws.ToString(out.VersionId),
		ETag:       aws.ToString(out.ETag),
		Size:       aws.ToInt64(out.ContentLength),
		Modified:   aws.ToTime(out.LastModified),
		PartsCount: int(aws.ToInt32(out.PartsCount)),
		Metadata:   out.Metadata,
		Props: Properties{
			ContentType:        aws.ToString(out.ContentType),
			ContentEncoding:    aws.ToString(out.ContentEncoding),
			ContentDisposition: aws.ToString(out.ContentDisposition),
			ContentLanguage:    aws.ToString(out.ContentLanguage),
			CacheControl:       aws.ToString(out.CacheControl),
			Expires:            aws.ToString(out.ExpiresString),
			WebsiteRedirect:    aws.ToString(out.WebsiteRedirectLocation),
			StorageClass:       string(out.StorageClass),
			BucketKeyEnabled:   aws.ToBool(out.BucketKeyEnabled),
		},
		LockMode:  string(out.ObjectLockMode),
		LegalHold: out.ObjectLockLegalHoldStatus == types.ObjectLockLegalHoldStatusOn,
		SSEC:      aws.ToString(out.SSECustomerAlgorithm) != "",
	}
	if out.ServerSideEncryption != "" && !o.SSEC {
		o.Props.SSE = string(out.ServerSideEncryption)
		o.Props.SSEKMSKeyID = aws.ToString(out.SSEKMSKeyId)
	}
	if out.ObjectLockRetainUntilDate != nil {
		o.RetainUntil = *out.ObjectLockRetainUntilDate
	}
	if o.Props.StorageClass == string(types.StorageClassStandard) {
		o.Props.StorageClass = ""
	}
	return o, nil
}

// PutNew implements Store.
func (s *S3Store) PutNew(ctx context.Context, bucket, key string, body []byte) (bool, error) {
	_, err := s.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body), IfNoneMatch: aws.String("*"),
		ContentType: aws.String("application/octet-stream")})
	if err == nil {
		return true, nil
	}
	if err = storeErr("PutObject", err); isPrecondition(err) {
		return false, nil
	}
	return false, err
}

// Get implements Store: the stored bytes of an object (or one version of
// it), as the store holds them, when its ETag still is ifMatch (if set).
// Rewrap reads key objects with it, never object data; the offline
// commands that read an object straight from the store do.
func (s *S3Store) Get(ctx context.Context, bucket, key, versionID, ifMatch string) (io.ReadCloser, error) {
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, VersionId: optional(versionID), IfMatch: optional(ifMatch)})
	if err != nil {
		return nil, storeErr("GetObject", err)
	}
	return out.Body, nil
}

// Tagging implements Store.
func (s *S3Store) Tagging(ctx context.Context, bucket, key, versionID string) (string, error) {
	out, err := s.c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &bucket, Key: &key, VersionId: optional(versionID)})
	if err != nil {
		return "", storeErr("GetObjectTagging", err)
	}
	v := url.Values{}
	for _, t := range out.TagSet {
		v.Add(aws.ToString(t.Key), aws.ToString(t.Value))
	}
	return v.Encode(), nil
}

// copySource is the x-amz-copy-source value of src.
func copySource(src Source) string {
	var b strings.Builder
	b.WriteString(src.Bucket)
	b.WriteByte('/')
	for i := 0; i < len(src.Key); i++ {
		c := src.Key[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if src.VersionID != "" {
		b.WriteString("?versionId=" + url.QueryEscape(src.VersionID))
	}
	return b.String()
}

func expires(v string) *time.Time {
	if v == "" {
		return nil
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return nil
	}
	return &t
}

// Copy implements Store.
func (s *S3Store) Copy(ctx context.Context, in CopyInput) (Written, error) {
	d := in.Dst
	ci := &s3.CopyObjectInput{
		Bucket:                  &d.Bucket,
		Key:                     &d.Key,
		CopySource:              aws.String(copySource(in.Src)),
		CopySourceIfMatch:       optional(in.Src.IfMatch),
		IfMatch:                 optional(d.IfMatch),
		MetadataDirective:       types.MetadataDirectiveReplace,
		TaggingDirective:        types.TaggingDirectiveCopy,
		Metadata:                d.Metadata,
		ContentType:             optional(d.Props.ContentType),
		ContentEncoding:         optional(d.Props.ContentEncoding),
		ContentDisposition:      optional(d.Props.ContentDisposition),
		ContentLanguage:         optional(d.Props.ContentLanguage),
		CacheControl:            optional(d.Props.CacheControl),
		Expires:                 expires(d.Props.Expires),
		WebsiteRedirectLocation: optional(d.Props.WebsiteRedirect),
		StorageClass:            types.StorageClass(d.Props.StorageClass),
	}
	ci.CopySourceSSECustomerAlgorithm, ci.CopySourceSSECustomerKey, ci.CopySourceSSECustomerKeyMD5 = ssec(in.Src.SSECKey)
	ci.SSECustomerAlgorithm, ci.SSECustomerKey, ci.SSECustomerKeyMD5 = ssec(d.SSECKey)
	if d.SSECKey == nil && d.Props.SSE != "" {
		ci.ServerSideEncryption = types.ServerSideEncryption(d.Props.SSE)
		ci.SSEKMSKeyId = optional(d.Props.SSEKMSKeyID)
		if d.Props.BucketKeyEnabled {
			ci.BucketKeyEnabled = aws.Bool(true)
		}
	}
	out, err := s.c.CopyObject(ctx, ci)
	if err != nil {
		return Written{}, storeErr("CopyObject", err)
	}
	w := Written{VersionID: aws.ToString(out.VersionId)}
	if out.CopyObjectResult != nil {
		w.ETag = aws.ToString(out.CopyObjectResult.ETag)
	}
	return w, nil
}

// CreateUpload implements Store.
func (s *S3Store) CreateUpload(ctx context.Context, in CopyInput) (string, error) {
	d := in.Dst
	ci := &s3.CreateMultipartUploadInput{
		Bucket:                  &d.Bucket,
		Key:                     &d.Key,
		Metadata:                d.Metadata,
		ContentType:             optional(d.Props.ContentType),
		ContentEncoding:         optional(d.Props.ContentEncoding),
		ContentDisposition:      optional(d.Props.ContentDisposition),
		ContentLanguage:         optional(d.Props.ContentLanguage),
		CacheControl:            optional(d.Props.CacheControl),
		Expires:                 expires(d.Props.Expires),
		WebsiteRedirectLocation: optional(d.Props.WebsiteRedirect),
		StorageClass:            types.StorageClass(d.Props.StorageClass),
		Tagging:                 optional(d.Tagging),
	}
	ci.SSECustomerAlgorithm, ci.SSECustomerKey, ci.SSECustomerKeyMD5 = ssec(d.SSECKey)
	if d.SSECKey == nil && d.Props.SSE != "" {
		ci.ServerSideEncryption = types.ServerSideEncryption(d.Props.SSE)
		ci.SSEKMSKeyId = optional(d.Props.SSEKMSKeyID)
		if d.Props.BucketKeyEnabled {
			ci.BucketKeyEnabled = aws.Bool(true)
		}
	}
	out, err := s.c.CreateMultipartUpload(ctx, ci)
	if err != nil {
		return "", storeErr("CreateMultipartUpload", err)
	}
	if aws.ToString(out.UploadId) == "" {
		return "", &StoreError{Op: "CreateMultipartUpload", Err: errors.New("no upload id")}
	}
	return aws.ToString(out.UploadId), nil
}

// CopyPart implements Store.
func (s *S3Store) CopyPart(ctx context.Context, in PartInput) (string, error) {
	pi := &s3.UploadPartCopyInput{
		Bucket:            &in.Bucket,
		Key:               &in.Key,
		UploadId:          &in.UploadID,
		PartNumber:        aws.Int32(int32(in.Part)),
		CopySource:        aws.String(copySource(in.Src)),
		CopySourceIfMatch: optional(in.Src.IfMatch),
		CopySourceRange:   aws.String(fmt.Sprintf("bytes=%d-%d", in.Offset, in.Offset+in.Size-1)),
	}
	pi.CopySourceSSECustomerAlgorithm, pi.CopySourceSSECustomerKey, pi.CopySourceSSECustomerKeyMD5 = ssec(in.Src.SSECKey)
	pi.SSECustomerAlgorithm, pi.SSECustomerKey, pi.SSECustomerKeyMD5 = ssec(in.SSECKey)
	out, err := s.c.UploadPartCopy(ctx, pi)
	if err != nil {
		return "", storeErr("UploadPartCopy", err)
	}
	if out.CopyPartResult == nil || aws.ToString(out.CopyPartResult.ETag) == "" {
		return "", &StoreError{Op: "UploadPartCopy", Err: errors.New("no part ETag")}
	}
	return aws.ToString(out.CopyPartResult.ETag), nil
}

// Complete implements Store.
func (s *S3Store) Complete(ctx context.Context, in CompleteInput) (Written, error) {
	parts := make([]types.CompletedPart, len(in.ETags))
	for i, e := range in.ETags {
		parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: aws.String(e)}
	}
	ci := &s3.CompleteMultipartUploadInput{
		Bucket:          &in.Bucket,
		Key:             &in.Key,
		UploadId:        &in.UploadID,
		IfMatch:         optional(in.IfMatch),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	ci.SSECustomerAlgorithm, ci.SSECustomerKey, ci.SSECustomerKeyMD5 = ssec(in.SSECKey)
	out, err := s.c.CompleteMultipartUpload(ctx, ci)
	if err != nil {
		return Written{}, storeErr("CompleteMultipartUpload", err)
	}
	return Written{VersionID: aws.ToString(out.VersionId), ETag: aws.ToString(out.ETag)}, nil
}

// Abort implements Store.
func (s *S3Store) Abort(ctx context.Context, bucket, key, uploadID string) error {
	_, err := s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: &uploadID})
	return storeErr("AbortMultipartUpload", err)
}

// DeleteVersion implements Store.
func (s *S3Store) DeleteVersion(ctx context.Context, bucket, key, versionID string) error {
	if versionID == "" {
		return &StoreError{Op: "DeleteObject", Err: errors.New("no version id")}
	}
	_, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key, VersionId: &versionID})
	return storeErr("DeleteObject", err)
}

// PutDeleteMarker implements Store.
func (s *S3Store) PutDeleteMarker(ctx context.Context, bucket, key string) (string, error) {
	out, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return "", storeErr("DeleteObject", err)
	}
	if !aws.ToBool(out.DeleteMarker) {
		return "", &StoreError{Op: "DeleteObject", Err: errors.New("no delete marker was created")}
	}
	return aws.ToString(out.VersionId), nil
}
