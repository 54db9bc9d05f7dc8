package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/s3seal/s3seal/integration/testbed"
)

// notifySocket is a unixgram socket standing in for systemd's.
type notifySocket struct {
	path string
	conn *net.UnixConn
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	// A short directory: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "s3seal-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: path, conn: c, msgs: make(chan string, 64)}
	go func() {
		defer close(n.msgs)
		buf := make([]byte, 4096)
		for {
			k, _, err := c.ReadFromUnix(buf)
			if err != nil {
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	t.Cleanup(func() { c.Close() })
	return n
}

// next waits for the next message holding want (a VAR=value line), and
// returns that message; other messages (STATUS=…) are skipped.
func (n *notifySocket) next(t *testing.T, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-n.msgs:
			if !ok {
				t.Fatalf("notify socket closed before %s", want)
			}
			for _, line := range strings.Split(m, "\n") {
				if line == want {
					return m
				}
			}
		case <-deadline:
			t.Fatalf("no %s within %v", want, timeout)
		}
	}
}

// s3sealProcess is "s3seal serve" started with a minimal valid environment.
type s3sealProcess struct {
	cmd    *exec.Cmd
	admin  string
	done   chan struct{}
	output *syncBuffer
}

func startServe(t *testing.T, notify string) *s3sealProcess {
	t.Helper()
	bin := s3sealBinary(t)
	home := t.TempDir()
	ports := make([]int, 0, 2)
	for len(ports) < 2 {
		p := testbed.FreePort(t)
		if len(ports) == 0 || ports[0] != p {
			ports = append(ports, p)
		}
	}
	admin := fmt.Sprintf("127.0.0.1:%d", ports[1])
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{
		"HOME=" + home,
		"PATH=/usr/bin:/bin",
		"NOTIFY_SOCKET=" + notify,
		"S3SEAL_TLS=off",
		fmt.Sprintf("S3SEAL_LISTEN=127.0.0.1:%d", ports[0]),
		"S3SEAL_ADMIN_LISTEN=" + admin,
		"S3SEAL_DATA_DIR=" + filepath.Join(home, "data"),
		"S3SEAL_CLIENT_ACCESS_KEY_ID=deploytest",
		"S3SEAL_CLIENT_SECRET_ACCESS_KEY=deploytest-not-a-real-secret",
		"AWS_ENDPOINT_URL_S3=http://127.0.0.1:1",
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=deploytest",
		"AWS_SECRET_ACCESS_KEY=deploytest-not-a-real-secret",
		"AWS_EC2_METADATA_DISABLED=true",
	}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &s3sealProcess{cmd: cmd, admin: admin, done: make(chan struct{}), output: out}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("s3seal output:\n%s", p.output.String())
		}
	})
	return p
}

// syncBuffer collects a process's output; the test reads it while the
// process may still write.
type syncBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (p *s3sealProcess) get(path string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.admin+path, nil)
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (p *s3sealProcess) signal(t *testing.T, s os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		t.Fatal(err)
	}
}

func (p *s3sealProcess) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("s3seal did not exit within %v", timeout)
		return -1
	}
}

// TestSdNotify runs s3seal under a stand-in for systemd's notification
// socket: READY=1 comes once the listeners answer, STOPPING=1 after
// SIGTERM, and the healthcheck command tells both states apart.
func TestSdNotify(t *testing.T) {
	testbed.Require(t)
	n := listenNotify(t)
	p := startServe(t, n.path)
	n.next(t, "READY=1", 30*time.Second)
	// READY=1 promises bound listeners: no retry here.
	if code, err := p.get("/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("after READY=1, /healthz: %d %v", code, err)
	}
	bin := s3sealBinary(t)
	for _, args := range [][]string{{"healthcheck"}, {"healthcheck", "--ready"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"S3SEAL_ADMIN_LISTEN=" + p.admin}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("s3seal %s while serving: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	p.signal(t, syscall.SIGTERM)
	n.next(t, "STOPPING=1", 10*time.Second)
	if code := p.wait(t, 40*time.Second); code != 0 {
		t.Fatalf("s3seal exited with %d after SIGTERM", code)
	}
	cmd := exec.Command(bin, "healthcheck")
	cmd.Env = []string{"S3SEAL_ADMIN_LISTEN=" + p.admin}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err == nil || !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("s3seal healthcheck after shutdown: %v, want exit 1\n%s", err, out)
	}
	if strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Fatalf("s3seal healthcheck printed more than one line:\n%s", out)
	}
}

// TestSdNotifyReload checks the reload protocol of Type=notify-reload:
// after SIGHUP, RELOADING=1 with MONOTONIC_USEC, then READY=1, and s3seal
// keeps serving.
func TestSdNotifyReload(t *testing.T) {
	testbed.Require(t)
	n := listenNotify(t)
	p := startServe(t, n.path)
	n.next(t, "READY=1", 30*time.Second)
	p.signal(t, syscall.SIGHUP)
	m := n.next(t, "RELOADING=1", 10*time.Second)
	if !strings.Contains(m, "\nMONOTONIC_USEC=") && !strings.HasPrefix(m, "MONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", m)
	}
	n.next(t, "READY=1", 10*time.Second)
	if code, err := p.get("/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("after reload, /healthz: %d %v", code, err)
	}
	p.signal(t, syscall.SIGTERM)
	n.next(t, "STOPPING=1", 10*time.Second)
	p.wait(t, 40*time.Second)
}
