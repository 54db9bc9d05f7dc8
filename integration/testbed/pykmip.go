package testbed

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const pykmipReadyTimeout = 30 * time.Second

// PyKMIP is a running PyKMIP server (Debian's python3-pykmip, started as
// pykmip-server) on 127.0.0.1, with certificates from a CA made for it and
// a fresh SQLite database. Clients authenticate with a certificate from
// the same CA; PyKMIP names each client by its certificate's common name,
// and a key belongs to the client that created it.
type PyKMIP struct {
	Addr string // 127.0.0.1:PORT
	Dir  string
	CA   *CA
	// CAFile, ClientCert and ClientKey are the files of the client
	// identity "s3seal", which CreateKeys uses and which owns the keys.
	CAFile, ClientCert, ClientKey string
	// LogFile is the server's log, one "Processing operation: X" line per
	// operation it serves.
	LogFile string

	proc *Process
}

// pykmipBinary is Debian's start script of the server; it takes the log
// file with -l (not from the configuration file).
const pykmipBinary = "pykmip-server"

// StartPyKMIP starts pykmip-server on a free port and waits until it
// completes a TLS handshake. A Cleanup stops it.
func StartPyKMIP(t testing.TB) *PyKMIP {
	t.Helper()
	if _, err := exec.LookPath(pykmipBinary); err != nil {
		t.Fatalf("testbed: pykmip-server not found (apt-get install python3-pykmip); %s", installHint)
	}
	k := &PyKMIP{Dir: t.TempDir(), CA: NewCA(t, "s3seal test KMIP CA")}
	k.CAFile = k.CA.WriteFiles(t, k.Dir, "ca.pem", "server.pem", "server.key", "127.0.0.1")
	certPEM, keyPEM := k.CA.IssueCert(t, "s3seal")
	k.ClientCert, k.ClientKey = filepath.Join(k.Dir, "client.pem"), filepath.Join(k.Dir, "client.key")
	writeFile(t, k.ClientCert, certPEM, 0o644)
	writeFile(t, k.ClientKey, keyPEM, 0o600)
	k.Addr = loopback(FreePort(t))
	_, port, _ := net.SplitHostPort(k.Addr)
	policies := filepath.Join(k.Dir, "policies")
	if err := os.Mkdir(policies, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(k.Dir, "server.conf")
	writeFile(t, conf, []byte(fmt.Sprintf(`[server]
hostname=127.0.0.1
port=%s
certificate_path=%s
key_path=%s
ca_path=%s
auth_suite=TLS1.2
policy_path=%s
enable_tls_client_auth=True
logging_level=INFO
database_path=%s
`, port, filepath.Join(k.Dir, "server.pem"), filepath.Join(k.Dir, "server.key"), k.CAFile, policies, filepath.Join(k.Dir, "pykmip.db"))), 0o600)
	k.LogFile = filepath.Join(k.Dir, "server.log")
	k.proc = StartProcess(t, pykmipBinary, nil, "-f", conf, "-l", k.LogFile)
	k.waitReady(t)
	return k
}

func writeFile(t testing.TB, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatalf("testbed: %v", err)
	}
}

// waitReady waits until the server completes a mutual TLS handshake.
func (k *PyKMIP) waitReady(t testing.TB) {
	t.Helper()
	start := time.Now()
	cert, err := tls.LoadX509KeyPair(k.ClientCert, k.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: k.CA.Pool(), ServerName: "127.0.0.1"}
	var last error
	for time.Since(start) < pykmipReadyTimeout {
		select {
		case <-k.proc.Exited():
			t.Fatalf("testbed: pykmip-server exited while starting:\n%s", k.proc.tail(tailBytes))
		default:
		}
		d := &net.Dialer{Timeout: time.Second}
		c, err := tls.DialWithDialer(d, "tcp", k.Addr, cfg)
		if err == nil {
			c.Close()
			t.Logf("testbed: PyKMIP ready at %s in %v", k.Addr, time.Since(start).Round(time.Millisecond))
			return
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("testbed: PyKMIP did not start: %v\nlast output:\n%s", last, k.proc.tail(tailBytes))
}

// Process returns the server's process, for fault tests (Stop, Restart).
func (k *PyKMIP) Process() *Process { return k.proc }

// pykmipAdmin runs operations with PyKMIP's own Python client (an
// implementation independent of s3seal's): create AES-256 keys usable for
// Encrypt and Decrypt and activate them, or revoke a key (which takes it to
// the Deactivated state).
const pykmipAdmin = `
import sys
from kmip.pie.client import ProxyKmipClient
from kmip import enums
host, port, cert, key, ca, cmd = sys.argv[1:7]
c = ProxyKmipClient(hostname=host, port=int(port), cert=cert, key=key, ca=ca,
                    ssl_version="PROTOCOL_TLSv1_2",
                    kmip_version=enums.KMIPVersion.KMIP_1_4)
with c:
    if cmd == "create":
        for _ in range(int(sys.argv[7])):
            uid = c.create(enums.CryptographicAlgorithm.AES, 256,
                           cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT])
            c.activate(uid)
            print("uid:" + uid)
    elif cmd == "revoke":
        c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, sys.argv[7])
`

// Admin runs the admin script with cmd and args as the client identity
// given by cert and key (ClientCert and ClientKey if empty) and returns
// the identifiers it printed.
func (k *PyKMIP) Admin(t testing.TB, cert, key, cmd string, args ...string) []string {
	t.Helper()
	if cert == "" {
		cert, key = k.ClientCert, k.ClientKey
	}
	host, port, _ := net.SplitHostPort(k.Addr)
	argv := append([]string{"-c", pykmipAdmin, host, port, cert, key, k.CAFile, cmd}, args...)
	cmdline := exec.Command("/usr/bin/python3", argv...)
	cmdline.Env = append(os.Environ(), "HOME="+k.Dir)
	out, err := cmdline.CombinedOutput()
	if err != nil {
		t.Fatalf("testbed: PyKMIP %s: %v\n%s", cmd, err, out)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "uid:"); ok {
			lines = append(lines, v)
		}
	}
	return lines
}

// CreateKeys creates n AES-256 keys owned by the "s3seal" identity and
// returns their unique identifiers.
func (k *PyKMIP) CreateKeys(t testing.TB, n int) []string {
	t.Helper()
	ids := k.Admin(t, "", "", "create", fmt.Sprint(n))
	if len(ids) != n {
		t.Fatalf("testbed: PyKMIP created %v, want %d keys", ids, n)
	}
	return ids
}

// Revoke deactivates key id.
func (k *PyKMIP) Revoke(t testing.TB, id string) { k.Admin(t, "", "", "revoke", id) }

// IssueClient writes a client certificate and key for identity cn, signed
// by ca (k.CA if nil), and returns their paths.
func (k *PyKMIP) IssueClient(t testing.TB, ca *CA, cn string) (cert, key string) {
	t.Helper()
	if ca == nil {
		ca = k.CA
	}
	certPEM, keyPEM := ca.IssueCert(t, cn)
	cert, key = filepath.Join(k.Dir, cn+".pem"), filepath.Join(k.Dir, cn+".key")
	writeFile(t, cert, certPEM, 0o644)
	writeFile(t, key, keyPEM, 0o600)
	return cert, key
}

// Count returns how many times the server has processed operation op
// ("Encrypt", "Decrypt", "Get Attributes", …), from its log.
func (k *PyKMIP) Count(t testing.TB, op string) int {
	t.Helper()
	b, err := os.ReadFile(k.LogFile)
	if err != nil {
		t.Fatalf("testbed: PyKMIP log: %v", err)
	}
	return strings.Count(string(b), "Processing operation: "+op+"\n")
}

// Stop stops the server (its database stays).
func (k *PyKMIP) Stop(t testing.TB) { k.proc.Stop(t) }

// Restart starts the stopped server again with the same database and
// waits until it serves.
func (k *PyKMIP) Restart(t testing.TB) {
	t.Helper()
	k.proc.Restart(t)
	k.waitReady(t)
}
