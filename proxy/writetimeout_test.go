package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// TestWriteTimeoutCutsStalledClient: a client that stops reading a large
// GET is cut off once a write has made no progress for the write timeout,
// over TLS as over plain HTTP, and the request ends (its store connection
// released) instead of waiting for the client to hang up. Over TLS, a
// write deadline alone returned only seconds later, so the connection is
// closed by a watchdog.
func TestWriteTimeoutCutsStalledClient(t *testing.T) {
	env := newEnv(t, envOptions{Buckets: []string{"bkt"}, Handler: func(o *Options) { o.WriteTimeout = 300 * time.Millisecond }})
	expect(t, env.do(t, "PUT", "/bkt/big", bytes.Repeat([]byte("x"), 48<<20)), 200)
	for _, useTLS := range []bool{false, true} {
		name := map[bool]string{false: "http", true: "tls"}[useTLS]
		t.Run(name, func(t *testing.T) {
			env.logs.TakeAll()
			ts := httptest.NewUnstartedServer(env.h)
			ts.Config.ConnContext = WithConn
			if useTLS {
				ts.StartTLS()
			} else {
				ts.Start()
			}
			defer ts.Close()
			req, _ := http.NewRequest("GET", ts.URL+"/bkt/big", nil)
			req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
			s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
			if err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: env.ak, SecretAccessKey: env.sk}, req, emptySHA256, "s3", "us-east-1", time.Now()); err != nil {
				t.Fatal(err)
			}
			raw, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			_ = raw.(*net.TCPConn).SetReadBuffer(4096)
			var conn net.Conn = raw
			if useTLS {
				conn = tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			}
			if err := req.Write(conn); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 1024), req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET: %v %v", resp, err)
			}
			// Stop reading; the request must end within a few timeouts.
			start := time.Now()
			for {
				if entries := env.logs.FilterMessage("request").All(); len(entries) > 0 {
					if d := time.Since(start); d > 3*time.Second {
						t.Errorf("the stalled request ended after %v; want about the write timeout", d)
					}
					break
				}
				if time.Since(start) > 10*time.Second {
					t.Fatal("the stalled request did not end within 10 s")
				}
				time.Sleep(20 * time.Millisecond)
			}
			// The connection is gone (reset): reading what is left fails
			// at once, with neither the whole object nor a timeout.
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := io.Copy(io.Discard, resp.Body)
			var ne net.Error
			if n >= 48<<20 || err == nil || errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("after the cut the client read %d more bytes and then %v; want the connection reset", n, err)
			}
		})
	}
}
