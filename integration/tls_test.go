package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/s3seal/s3seal/deploy/tlsconf"
	"github.com/s3seal/s3seal/integration/testbed"
)

// tlsLogger returns a logger that keeps entries for assertions; they are
// printed if the test fails. (Not zaptest: certmagic may still log from a
// background job after the test has returned.)
func tlsLogger(t *testing.T, name string) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.InfoLevel)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		all := logs.All()
		if len(all) > 80 {
			all = all[len(all)-80:]
		}
		for _, e := range all {
			t.Logf("%s %s %s: %s %v", name, e.Level, e.LoggerName, e.Message, e.ContextMap())
		}
	})
	return zap.New(core).Named(name), logs
}

// tlsCountLogs counts entries whose message contains msg, across loggers.
func tlsCountLogs(msg string, logs ...*observer.ObservedLogs) int {
	n := 0
	for _, l := range logs {
		n += len(l.FilterMessageSnippet(msg).All())
	}
	return n
}

// tlsListen serves h on addr (127.0.0.1:PORT) until the test ends; with cfg
// the listener speaks TLS.
func tlsListen(t *testing.T, addr string, cfg *tls.Config, h http.Handler) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	srv := &http.Server{Handler: h, TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	if cfg != nil {
		go srv.ServeTLS(ln, "", "")
	} else {
		go srv.Serve(ln)
	}
	t.Cleanup(func() { srv.Close() })
}

// tlsHello answers with a fixed body, so a client can tell it reached s3seal.
func tlsHello(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from "+name)
	})
}

// tlsGet fetches https://domain/ from addr, trusting only roots, and
// returns the body and the served leaf certificate.
func tlsGet(t *testing.T, roots *x509.CertPool, domain, addr string) (string, *x509.Certificate) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+domain+"/", nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET https://%s/ via %s: %v", domain, addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	// A client offering both HTTP/2 and HTTP/1.1 gets HTTP/1.1 (s3seal's
	// preference for S3 traffic; tlsconf tests cover HTTP/2).
	if resp.ProtoMajor != 1 {
		t.Errorf("protocol %s, want HTTP/1.1", resp.Proto)
	}
	return string(body), resp.TLS.PeerCertificates[0]
}

// tlsServedLeaf returns the leaf certificate addr serves for domain, unverified.
func tlsServedLeaf(addr, domain string) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: domain, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func waitTLSReady(t *testing.T, m *tlsconf.Manager, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = m.Ready(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("not ready after %v: %v", timeout, err)
}

func tlsPool(t *testing.T, pemBytes []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no certificates in PEM")
	}
	return p
}

// TestTLSACMEHTTP01 obtains a certificate from Pebble with the HTTP-01
// challenge answered by s3seal's plain-HTTP handler, and serves it.
func TestTLSACMEHTTP01(t *testing.T) {
	testbed.Require(t)
	p := testbed.StartPebble(t)
	const domain = "s3.http01.example.test"
	logger, logs := tlsLogger(t, "http01")
	m, err := tlsconf.New(t.Context(), tlsconf.Options{
		Mode:    tlsconf.ModeACME,
		DataDir: t.TempDir(),
		ACME: tlsconf.ACMEOptions{
			Domains: []string{domain}, Email: "ops@example.test",
			CA: p.Directory, CARoot: p.CAFile,
			Challenges:  []string{tlsconf.ChallengeHTTP01},
			AltHTTPPort: p.HTTPPort, ListenHost: "127.0.0.1",
		},
		Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := m.TLSConfig().NextProtos; strings.Contains(strings.Join(got, ","), "acme-tls/1") {
		t.Errorf("acme-tls/1 offered with only HTTP-01 enabled: %q", got)
	}

	var challenges atomic.Int64
	front := m.HTTPChallengeHandler(tlsHello("http"))
	tlsListen(t, "127.0.0.1:"+strconv.Itoa(p.HTTPPort), nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			challenges.Add(1)
		}
		front.ServeHTTP(w, r)
	}))
	httpsAddr := "127.0.0.1:" + strconv.Itoa(testbed.FreePort(t))
	tlsListen(t, httpsAddr, m.TLSConfig(), tlsHello("https"))

	start := time.Now()
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitTLSReady(t, m, 60*time.Second)
	t.Logf("certificate obtained by HTTP-01 in %v", time.Since(start).Round(time.Millisecond))
	if challenges.Load() == 0 {
		t.Error("Pebble's validation never reached s3seal's HTTP handler")
	}
	body, leaf := tlsGet(t, tlsPool(t, p.IssuerRoots(t)), domain, httpsAddr)
	if body != "hello from https" || !slices.Contains(leaf.DNSNames, domain) {
		t.Fatalf("body %q, names %q", body, leaf.DNSNames)
	}
	if !m.NotAfter().Equal(leaf.NotAfter) {
		t.Errorf("NotAfter %v, served certificate ends %v", m.NotAfter(), leaf.NotAfter)
	}
	if n := tlsCountLogs("certificate obtained successfully", logs); n != 1 {
		t.Errorf("%d certificates obtained, want 1", n)
	}
}

// TestTLSACMETLSALPN01 obtains a certificate from Pebble with the
// TLS-ALPN-01 challenge answered by s3seal's own HTTPS listener.
func TestTLSACMETLSALPN01(t *testing.T) {
	testbed.Require(t)
	p := testbed.StartPebble(t)
	const domain = "s3.tlsalpn.example.test"
	logger, _ := tlsLogger(t, "tlsalpn")
	m, err := tlsconf.New(t.Context(), tlsconf.Options{
		Mode:    tlsconf.ModeACME,
		DataDir: t.TempDir(),
		ACME: tlsconf.ACMEOptions{
			Domains: []string{domain},
			CA:      p.Directory, CARoot: p.CAFile,
			Challenges:     []string{tlsconf.ChallengeTLSALPN01},
			AltTLSALPNPort: p.TLSPort, ListenHost: "127.0.0.1",
		},
		Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	addr := "127.0.0.1:" + strconv.Itoa(p.TLSPort)
	tlsListen(t, addr, m.TLSConfig(), tlsHello("https"))

	start := time.Now()
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitTLSReady(t, m, 60*time.Second)
	t.Logf("certificate obtained by TLS-ALPN-01 in %v", time.Since(start).Round(time.Millisecond))
	body, leaf := tlsGet(t, tlsPool(t, p.IssuerRoots(t)), domain, addr)
	if body != "hello from https" || !slices.Contains(leaf.DNSNames, domain) {
		t.Fatalf("body %q, names %q", body, leaf.DNSNames)
	}
	// The certificate is not handed to other names.
	if _, err := tlsServedLeaf(addr, "other.example.test"); err == nil {
		t.Error("handshake for an unmanaged name succeeded")
	}
}

// TestTLSACMEUnreachableDirectory checks that a CA that cannot be reached
// leaves the Manager not ready with a message that says why.
func TestTLSACMEUnreachableDirectory(t *testing.T) {
	testbed.Require(t)
	ca := "https://127.0.0.1:" + strconv.Itoa(testbed.FreePort(t)) + "/dir"
	logger, _ := tlsLogger(t, "unreachable")
	m, err := tlsconf.New(t.Context(), tlsconf.Options{
		Mode: tlsconf.ModeACME, DataDir: t.TempDir(), Logger: logger,
		ACME: tlsconf.ACMEOptions{Domains: []string{"s3.down.example.test"}, CA: ca},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := m.Ready()
		var nr *tlsconf.NotReadyError
		if errors.As(err, &nr) && nr.Err != nil {
			for _, want := range []string{"s3.down.example.test", "ACME order failed", ca, "connection refused"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Ready error %q does not mention %q", err, want)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ready after 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tlsReplica is one s3seal instance of a scaled-out deployment.
type tlsReplica struct {
	m     *tlsconf.Manager
	logs  *observer.ObservedLogs
	https string // address of its HTTPS listener
}

func startTLSReplica(t *testing.T, name string, st certmagic.Storage, ao tlsconf.ACMEOptions) *tlsReplica {
	t.Helper()
	logger, logs := tlsLogger(t, name)
	m, err := tlsconf.New(t.Context(), tlsconf.Options{
		Mode: tlsconf.ModeACME, DataDir: t.TempDir(), Storage: st, ACME: ao, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	r := &tlsReplica{m: m, logs: logs, https: "127.0.0.1:" + strconv.Itoa(testbed.FreePort(t))}
	tlsListen(t, r.https, m.TLSConfig(), tlsHello(name))
	return r
}

// TestTLSACMEReplicasShareS3Storage runs two Managers ("replicas") whose
// certmagic storage is the same MinIO bucket: they must obtain one
// certificate between them, both serve it, and both serve its renewal,
// whether forced on one replica or due by age.
func TestTLSACMEReplicasShareS3Storage(t *testing.T) {
	testbed.Require(t)
	p := testbed.StartPebble(t)
	minio := testbed.StartMinIO(t, testbed.MinIOOptions{TLS: true})
	const bucket = "s3seal-tls"
	minio.CreateBucket(t, bucket)
	client := minio.Client(t)
	roots := tlsPool(t, p.IssuerRoots(t))

	// Pebble validates HTTP-01 on one port: the load balancer in front of
	// the replicas. It sends challenges to whichever replica is "front";
	// the replica that placed the order may be another one.
	var front atomic.Pointer[http.Handler]
	tlsListen(t, "127.0.0.1:"+strconv.Itoa(p.HTTPPort), nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(*front.Load()).ServeHTTP(w, r)
	}))
	storage := func(t *testing.T, prefix string) certmagic.Storage {
		logger, _ := tlsLogger(t, "storage")
		st, err := tlsconf.NewS3Storage(tlsconf.S3StorageOptions{
			Client: client, Bucket: bucket, Prefix: prefix, Logger: logger, LockTTL: 10 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	certObjects := func(t *testing.T, prefix string) int {
		out, err := client.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix + "certificates/")})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, o := range out.Contents {
			if strings.HasSuffix(aws.ToString(o.Key), ".crt") {
				n++
			}
		}
		return n
	}
	// waitServing waits until every replica serves a certificate other
	// than old and all serve the same one.
	waitServing := func(t *testing.T, old *x509.Certificate, domain string, timeout time.Duration, rs ...*tlsReplica) *x509.Certificate {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			var first *x509.Certificate
			same := true
			for _, r := range rs {
				leaf, err := tlsServedLeaf(r.https, domain)
				if err != nil || (old != nil && leaf.Equal(old)) {
					same = false
					break
				}
				if first == nil {
					first = leaf
				} else if !leaf.Equal(first) {
					same = false
				}
			}
			if same && first != nil {
				return first
			}
			if time.Now().After(deadline) {
				t.Fatalf("replicas do not serve one new certificate for %s after %v", domain, timeout)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	t.Run("one order, forced renewal", func(t *testing.T) {
		const domain = "replicas.example.test"
		ao := tlsconf.ACMEOptions{
			Domains: []string{domain}, CA: p.Directory, CARoot: p.CAFile,
			Challenges: []string{tlsconf.ChallengeHTTP01}, AltHTTPPort: p.HTTPPort, ListenHost: "127.0.0.1",
			SyncInterval: 500 * time.Millisecond,
		}
		a := startTLSReplica(t, "a", storage(t, "forced/"), ao)
		b := startTLSReplica(t, "b", storage(t, "forced/"), ao)
		h := a.m.HTTPChallengeHandler(nil)
		front.Store(&h)

		start := time.Now()
		for _, r := range []*tlsReplica{a, b} {
			if err := r.m.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		waitTLSReady(t, a.m, 90*time.Second)
		waitTLSReady(t, b.m, 90*time.Second)
		t.Logf("both replicas ready in %v", time.Since(start).Round(time.Millisecond))
		if n := tlsCountLogs("certificate obtained successfully", a.logs, b.logs); n != 1 {
			t.Errorf("replicas obtained %d certificates, want 1", n)
		}
		if n := certObjects(t, "forced/"); n != 1 {
			t.Errorf("%d certificate objects in the bucket, want 1", n)
		}
		_, leafA := tlsGet(t, roots, domain, a.https)
		bodyB, leafB := tlsGet(t, roots, domain, b.https)
		if !leafA.Equal(leafB) || bodyB != "hello from b" {
			t.Fatalf("replicas serve different certificates (serials %s, %s)", leafA.SerialNumber, leafB.SerialNumber)
		}

		// A renews (as after a key compromise); B picks it up from storage.
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		if err := a.m.RenewNow(ctx); err != nil {
			t.Fatal(err)
		}
		if leaf, err := tlsServedLeaf(a.https, domain); err != nil || leaf.Equal(leafA) {
			t.Fatalf("replica a still serves the old certificate after RenewNow (%v)", err)
		}
		renewed := waitServing(t, leafA, domain, 15*time.Second, a, b)
		_, viaB := tlsGet(t, roots, domain, b.https)
		if !viaB.Equal(renewed) {
			t.Error("replica b's renewed certificate does not verify")
		}
		if n := tlsCountLogs("certificate renewed successfully", a.logs, b.logs); n != 1 {
			t.Errorf("%d renewals, want 1", n)
		}
		if n := tlsCountLogs("serving the certificate found in storage", b.logs); n == 0 {
			t.Error("replica b did not log loading the renewal from storage")
		}
	})

	t.Run("renewal due by age", func(t *testing.T) {
		// Two-minute certificates, renewed once nine tenths of their life
		// remain (or earlier, when Pebble's renewal info suggests so) and
		// checked every second. The storage sync is left slow, so picking up
		// the renewal is certmagic's own doing: a replica whose copy comes due
		// first looks in storage and loads what another replica renewed.
		const domain = "aging.example.test"
		ao := tlsconf.ACMEOptions{
			Domains: []string{domain}, CA: p.Directory, CARoot: p.CAFile,
			Challenges: []string{tlsconf.ChallengeHTTP01}, AltHTTPPort: p.HTTPPort, ListenHost: "127.0.0.1",
			Lifetime: 2 * time.Minute, RenewalWindowRatio: 0.9, RenewCheckInterval: time.Second,
			SyncInterval: time.Hour,
		}
		c := startTLSReplica(t, "c", storage(t, "aging/"), ao)
		d := startTLSReplica(t, "d", storage(t, "aging/"), ao)
		h := d.m.HTTPChallengeHandler(nil)
		front.Store(&h)
		for _, r := range []*tlsReplica{c, d} {
			if err := r.m.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		first := waitServing(t, nil, domain, 90*time.Second, c, d)
		if life := first.NotAfter.Sub(first.NotBefore); life > 3*time.Minute {
			t.Fatalf("certificate lifetime %v: the CA ignored the requested lifetime", life)
		}
		renewed := waitServing(t, first, domain, 60*time.Second, c, d)
		if !renewed.NotBefore.After(first.NotBefore) {
			t.Error("renewed certificate is not newer")
		}
		// Renewals may follow one another (renewal info picks a random time
		// in these short lifetimes), but the certificate is obtained once.
		if n := tlsCountLogs("certificate obtained successfully", c.logs, d.logs); n != 1 {
			t.Errorf("%d certificates obtained, want 1", n)
		}
		t.Logf("renewals: %d; loaded from storage by the other replica: %d",
			tlsCountLogs("certificate renewed successfully", c.logs, d.logs),
			tlsCountLogs("already renewed in storage", c.logs, d.logs))
	})
}

// TestTLSS3StorageServers checks the S3 storage against MinIO and versitygw:
// keys, exclusive locks between instances, and stale-lock take-over.
func TestTLSS3StorageServers(t *testing.T) {
	testbed.Require(t)
	servers := []struct {
		srv        *testbed.S3Server
		condDelete bool // honours If-Match on DeleteObject
	}{
		{testbed.StartMinIO(t, testbed.MinIOOptions{}), false},
		{testbed.StartVersitygw(t), true},
	}
	for _, s := range servers {
		t.Run(s.srv.Name, func(t *testing.T) {
			ctx := t.Context()
			const bucket = "tls-storage"
			s.srv.CreateBucket(t, bucket)
			client := s.srv.Client(t)
			newStorage := func(ttl time.Duration) certmagic.Storage {
				st, err := tlsconf.NewS3Storage(tlsconf.S3StorageOptions{Client: client, Bucket: bucket, Prefix: "p", Logger: zap.NewNop(), LockTTL: ttl})
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
			st := newStorage(5 * time.Second)

			if err := st.Store(ctx, "certificates/ca/a/a.crt", []byte("cert")); err != nil {
				t.Fatal(err)
			}
			if b, err := st.Load(ctx, "certificates/ca/a/a.crt"); err != nil || string(b) != "cert" {
				t.Fatalf("Load = %q, %v", b, err)
			}
			if !st.Exists(ctx, "certificates/ca") || st.Exists(ctx, "certificates/c") {
				t.Error("Exists does not treat prefixes as directories")
			}
			if keys, err := st.List(ctx, "certificates", false); err != nil || len(keys) != 1 || keys[0] != "certificates/ca" {
				t.Errorf("List = %q, %v", keys, err)
			}
			if err := st.Delete(ctx, "certificates"); err != nil || st.Exists(ctx, "certificates/ca/a/a.crt") {
				t.Errorf("Delete of a directory: %v", err)
			}

			// Two instances: the second waits for the first's Unlock.
			other := newStorage(5 * time.Second)
			if err := st.Lock(ctx, "issue_cert_x"); err != nil {
				t.Fatal(err)
			}
			locker := other.(certmagic.TryLocker)
			if ok, err := locker.TryLock(ctx, "issue_cert_x"); ok || err != nil {
				t.Fatalf("second instance took a held lock: %v, %v", ok, err)
			}
			got := make(chan error, 1)
			go func() { got <- other.Lock(ctx, "issue_cert_x") }()
			time.Sleep(300 * time.Millisecond)
			select {
			case err := <-got:
				t.Fatalf("Lock returned while the lock was held: %v", err)
			default:
			}
			if err := st.Unlock(ctx, "issue_cert_x"); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-got:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("waiting Lock not granted after Unlock")
			}
			if err := other.Unlock(ctx, "issue_cert_x"); err != nil {
				t.Fatal(err)
			}
			// What Unlock leaves behind depends on conditional DeleteObject.
			_, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("p/locks/issue_cert_x.lock")})
			if s.condDelete && err == nil {
				t.Error("released lock not deleted although the server honours If-Match on DeleteObject")
			}
			if !s.condDelete && err != nil {
				t.Errorf("released lock deleted although the server ignores If-Match on DeleteObject: %v", err)
			}

			// A lock whose holder vanished is taken over after its expiry.
			expired := `{"owner":"vanished","expires":"` + time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano) + `"}`
			if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("p/locks/stale.lock"), Body: strings.NewReader(expired)}); err != nil {
				t.Fatal(err)
			}
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := st.Lock(lctx, "stale"); err != nil {
				t.Fatalf("expired lock not taken over: %v", err)
			}
			st.Unlock(ctx, "stale")
		})
	}
}
