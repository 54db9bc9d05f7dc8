package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/s3seal/s3seal/proxy/authz"
)

// Regression tests for what the reliability suite (integration/
// reliability_*_test.go) found: a request whose body fails must never be
// answered 200.

// rawPut opens a plain connection to env and sends the headers of a signed
// PUT of declared bytes (UNSIGNED-PAYLOAD), then sent bytes of its body.
func rawPut(t *testing.T, env *testEnv, key string, declared, sent int) net.Conn {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, env.srv.URL+"/bkt/"+key, nil)
	req.ContentLength = int64(declared)
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: env.ak, SecretAccessKey: env.sk}, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(env.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "PUT /bkt/%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", key, req.Host, declared)
	for k, v := range req.Header {
		fmt.Fprintf(conn, "%s: %s\r\n", k, v[0])
	}
	fmt.Fprintf(conn, "\r\n%s", strings.Repeat("x", sent))
	return conn
}

// TestStalledBodyIsRequestTimeout: a body that stops past the body read
// timeout gets 400 RequestTimeout (it used to be taken for a client that
// had gone, and net/http finished the response with an empty 200).
func TestStalledBodyIsRequestTimeout(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{Buckets: []string{"bkt"}, Handler: func(o *Options) { o.BodyReadTimeout = 300 * time.Millisecond }})
	conn := rawPut(t, env, "stalled", 1000, 100)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "<Code>RequestTimeout</Code>") {
		t.Fatalf("stalled body: %d %s, want 400 RequestTimeout", resp.StatusCode, b)
	}
	if env.store.object("bkt", "stalled") != nil {
		t.Fatal("the store holds an object from a stalled body")
	}
}

// TestHalfClosedBodyNot200: a client that sends part of its body and
// half-closes the connection must not read a 200.
func TestHalfClosedBodyNot200(t *testing.T) {
	t.Parallel()
	env := newEnv(t, envOptions{Buckets: []string{"bkt"}})
	conn := rawPut(t, env, "half", 1000, 100)
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil && resp.StatusCode/100 == 2 {
		t.Fatalf("a body cut short by a half-close was answered %d", resp.StatusCode)
	}
	if env.store.object("bkt", "half") != nil {
		t.Fatal("the store holds an object from a body cut short")
	}
}

// TestListBucketsFiltered: a client limited to some buckets sees only those
// in ListBuckets (the answer used to list every bucket of the store).
func TestListBucketsFiltered(t *testing.T) {
	const doc = `<?xml version="1.0" encoding="UTF-8"?>
<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>o</ID></Owner><Buckets><Bucket><Name>mine</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket><Bucket><Name>secret-plans</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket><Bucket><Name>logs-1</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>`
	t.Parallel()
	env := newEnv(t, envOptions{Clients: []Identity{{Client: authz.Client{Name: "app", Buckets: []string{"mine", "logs-*"}}, AccessKeyID: testAK, Secret: testSK}}})
	env.store.setHook(answer(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		_, _ = io.WriteString(w, doc)
	}))
	resp := env.do(t, http.MethodGet, "/", nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := string(b)
	if resp.StatusCode != http.StatusOK || strings.Contains(got, "secret-plans") || !strings.Contains(got, "<Name>mine</Name>") || !strings.Contains(got, "<Name>logs-1</Name>") {
		t.Fatalf("ListBuckets: %d %s", resp.StatusCode, got)
	}
	if resp.ContentLength != int64(len(b)) {
		t.Errorf("Content-Length %d for %d bytes", resp.ContentLength, len(b))
	}
	want := strings.Replace(doc, `<Bucket><Name>secret-plans</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>`, "", 1)
	if got != want {
		t.Errorf("the rest of the answer changed:\n%s", got)
	}
}

func FuzzFilterListBuckets(f *testing.F) {
	f.Add([]byte(`<ListAllMyBucketsResult><Buckets><Bucket><Name>a</Name></Bucket><Bucket><Name>b</Name></Bucket></Buckets></ListAllMyBucketsResult>`))
	f.Add([]byte(`<ListAllMyBucketsResult><Buckets><Bucket><Name>a<!-- x --></Name></Bucket></Buckets>`))
	f.Add([]byte(`<X><Buckets><Bucket><Name><Name>b</Name></Name></Bucket></Buckets></X>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		out, err := filterListBuckets(doc, func(name string) bool { return name == "a" })
		if err != nil {
			return
		}
		if len(out) > len(doc) {
			t.Fatal("filtering made the document longer")
		}
		// No refused bucket stays: filtering the result again removes
		// nothing.
		again, err := filterListBuckets(out, func(name string) bool { return name == "a" })
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("a filtered document filters again to something else: %v", err)
		}
	})
}
