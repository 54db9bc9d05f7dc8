package sigv4

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/s3seal/s3seal/proxy/s3err"
)

// fakeStore is a loopback S3 endpoint that authenticates every request
// with a Verifier, reads the verified body and records what it saw.
type fakeStore struct {
	v *Verifier

	mu      sync.Mutex
	objects map[string][]byte
	seen    []seenRequest
}

type seenRequest struct {
	method, path string
	mode         PayloadMode
	presigned    bool
	checksum     string
	err          error
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		v:       &Verifier{Lookup: StaticLookup(Credentials{testAKID, testSecret})},
		objects: map[string][]byte{},
	}
}

func (f *fakeStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := seenRequest{method: r.Method, path: r.URL.Path}
	defer func() {
		f.mu.Lock()
		f.seen = append(f.seen, rec)
		f.mu.Unlock()
	}()
	fail := func(err error) {
		rec.err = err
		e, ok := s3err.As(err)
		if !ok {
			e = s3err.InternalError
		}
		s3err.Write(w, r, e, r.URL.Path, "test")
	}
	res, err := f.v.Verify(r)
	if err != nil {
		fail(err)
		return
	}
	rec.mode, rec.presigned = res.Mode, res.Presigned
	body, err := io.ReadAll(res.Body)
	if err != nil {
		fail(err)
		return
	}
	if res.ChecksumAlgorithm != "" {
		v, _ := res.ChecksumValue()
		rec.checksum = string(res.ChecksumAlgorithm) + ":" + v
	}
	sum := md5.Sum(body)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
	switch r.Method {
	case http.MethodPut:
		f.mu.Lock()
		f.objects[r.URL.Path] = body
		f.mu.Unlock()
	case http.MethodGet:
		f.mu.Lock()
		obj, ok := f.objects[r.URL.Path]
		f.mu.Unlock()
		if !ok {
			fail(s3err.New("NoSuchKey", http.StatusNotFound, "The specified key does not exist."))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(obj)))
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.Write(obj)
	}
}

func (f *fakeStore) take() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.seen
	f.seen = nil
	return s
}

// The AWS SDK for Go v2 S3 client and minio-go, talking to a loopback
// endpoint over HTTPS and HTTP, send every payload mode this package
// decodes; each request must verify and each body arrive intact.
func TestRealClients(t *testing.T) {
	if testing.Short() {
		t.Skip("starts loopback servers")
	}
	store := newFakeStore()
	tlsSrv := httptest.NewTLSServer(store)
	defer tlsSrv.Close()
	plainSrv := httptest.NewServer(store)
	defer plainSrv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	keys := []string{"plain.bin", "with space/and+plus", "ключ/ü%#?.txt", "a//b/./c"}
	body := testBody(300000)

	for _, srv := range []*httptest.Server{tlsSrv, plainSrv} {
		secure := strings.HasPrefix(srv.URL, "https")
		client := s3.New(s3.Options{
			Region:           testRegion,
			Credentials:      awscreds.NewStaticCredentialsProvider(testAKID, testSecret, ""),
			BaseEndpoint:     aws.String(srv.URL),
			UsePathStyle:     true,
			HTTPClient:       srv.Client(),
			RetryMaxAttempts: 1,
			// The default since early 2025 when configured from the environment.
			RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		})
		for _, key := range keys {
			if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
				t.Fatalf("aws-sdk PutObject %q (secure=%v): %v", key, secure, err)
			}
			out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("aws-sdk GetObject %q: %v", key, err)
			}
			got, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if !bytes.Equal(got, body) {
				t.Fatalf("aws-sdk %q: object differs", key)
			}
		}
		// An empty object and presigned URLs.
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String("empty"), Body: bytes.NewReader(nil)}); err != nil {
			t.Fatalf("aws-sdk empty PutObject: %v", err)
		}
		presign := s3.NewPresignClient(client)
		pput, err := presign.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String("pre signed+key")})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, pput.Method, pput.URL, bytes.NewReader(body[:1000]))
		for k, v := range pput.SignedHeader {
			if k != "Host" {
				req.Header[k] = v
			}
		}
		resp, err := srv.Client().Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("presigned PUT: %v %v", err, resp)
		}
		resp.Body.Close()
		pget, err := presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("pre signed+key")})
		if err != nil {
			t.Fatal(err)
		}
		resp, err = srv.Client().Get(pget.URL)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("presigned GET: %v %v", err, resp)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(got, body[:1000]) {
			t.Fatal("presigned object differs")
		}

		u, _ := url.Parse(srv.URL)
		mc, err := minio.New(u.Host, &minio.Options{
			Creds:           miniocreds.NewStaticV4(testAKID, testSecret, ""),
			Secure:          secure,
			Transport:       srv.Client().Transport,
			Region:          testRegion,
			BucketLookup:    minio.BucketLookupPath,
			TrailingHeaders: true,
			MaxRetries:      1,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range keys {
			for _, opts := range []minio.PutObjectOptions{{}, {DisableMultipart: true, Checksum: minio.ChecksumCRC32C}} {
				if _, err := mc.PutObject(ctx, "bucket", "mc/"+key, bytes.NewReader(body), int64(len(body)), opts); err != nil {
					t.Fatalf("minio-go PutObject %q (secure=%v): %v", key, secure, err)
				}
			}
			obj, err := mc.GetObject(ctx, "bucket", "mc/"+key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(obj)
			obj.Close()
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("minio-go %q: object differs: %v", key, err)
			}
		}
	}

	modes := map[string]int{}
	for _, s := range store.take() {
		if s.err != nil {
			t.Errorf("%s %s: %v", s.method, s.path, s.err)
		}
		modes[s.mode.String()]++
		if s.presigned {
			modes["presigned"]++
		}
		if s.checksum != "" {
			modes["checksum "+strings.SplitN(s.checksum, ":", 2)[0]]++
		}
	}
	t.Logf("modes seen: %v", modes)
	for _, m := range []string{"SIGNED-PAYLOAD", unsignedPayload, streamingPayload, streamingPayloadTrailer, streamingUnsignedTrailer, "presigned", "checksum CRC32", "checksum CRC32C"} {
		if modes[m] == 0 {
			t.Errorf("no request used %s", m)
		}
	}
}
