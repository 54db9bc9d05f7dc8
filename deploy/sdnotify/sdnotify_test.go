package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listener is a unixgram socket standing in for systemd.
type listener struct {
	conn *net.UnixConn
	addr string // as written into NOTIFY_SOCKET
}

func listenPath(t *testing.T) *listener {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	return listen(t, path)
}

func listenAbstract(t *testing.T) *listener {
	t.Helper()
	return listen(t, fmt.Sprintf("@s3seal-sdnotify-test-%d-%d", time.Now().UnixNano(), unix.Getpid()))
}

func listen(t *testing.T, addr string) *listener {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &listener{conn: c, addr: addr}
}

// recv returns the next datagram, failing the test after a bound.
func (l *listener) recv(t *testing.T) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = l.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := l.conn.ReadFromUnix(buf)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	return string(buf[:n])
}

// none asserts that no datagram arrives within d.
func (l *listener) none(t *testing.T, d time.Duration) {
	t.Helper()
	buf := make([]byte, 4096)
	_ = l.conn.SetReadDeadline(time.Now().Add(d))
	if n, _, err := l.conn.ReadFromUnix(buf); err == nil {
		t.Fatalf("unexpected datagram %q", buf[:n])
	}
}

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestNotifyStates(t *testing.T) {
	for _, kind := range []string{"path", "abstract"} {
		t.Run(kind, func(t *testing.T) {
			var l *listener
			if kind == "path" {
				l = listenPath(t)
			} else {
				l = listenAbstract(t)
			}
			n := Notifier{
				LookupEnv: envOf(map[string]string{"NOTIFY_SOCKET": l.addr}),
				Monotonic: func() (time.Duration, error) { return 1234567891 * time.Microsecond, nil },
			}
			cases := []struct {
				send func() (bool, error)
				want string
			}{
				{n.Ready, "READY=1"},
				{n.Stopping, "STOPPING=1"},
				{n.Watchdog, "WATCHDOG=1"},
				{n.Reloading, "RELOADING=1\nMONOTONIC_USEC=1234567891"},
				{func() (bool, error) { return n.Status("serving on 127.0.0.1:8443\r\nadmin 127.0.0.1:9180") }, "STATUS=serving on 127.0.0.1:8443 admin 127.0.0.1:9180"},
				{func() (bool, error) { return n.Notify("EXTEND_TIMEOUT_USEC=5000000\nSTATUS=x") }, "EXTEND_TIMEOUT_USEC=5000000\nSTATUS=x"},
			}
			for _, c := range cases {
				sent, err := c.send()
				if err != nil || !sent {
					t.Fatalf("send %q: sent=%v err=%v", c.want, sent, err)
				}
				if got := l.recv(t); got != c.want {
					t.Fatalf("got %q, want %q", got, c.want)
				}
			}
		})
	}
}

func TestNoSocketIsNoop(t *testing.T) {
	for _, env := range []map[string]string{{}, {"NOTIFY_SOCKET": ""}} {
		n := Notifier{LookupEnv: envOf(env)}
		sent, err := n.Ready()
		if sent || err != nil {
			t.Fatalf("env %v: sent=%v err=%v, want false, nil", env, sent, err)
		}
	}
}

func TestBadSocket(t *testing.T) {
	for _, addr := range []string{"relative/notify.sock", "@", "vsock:2:1234", "notify"} {
		n := Notifier{LookupEnv: envOf(map[string]string{"NOTIFY_SOCKET": addr})}
		sent, err := n.Ready()
		if sent || !errors.Is(err, ErrBadSocket) {
			t.Fatalf("%q: sent=%v err=%v, want ErrBadSocket", addr, sent, err)
		}
		var e *Error
		if !errors.As(err, &e) || e.Op != "address" || !strings.HasPrefix(err.Error(), "sdnotify: ") {
			t.Fatalf("%q: error %v is not an address *Error", addr, err)
		}
	}
}

func TestSocketGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.sock")
	n := Notifier{LookupEnv: envOf(map[string]string{"NOTIFY_SOCKET": path})}
	sent, err := n.Ready()
	var e *Error
	if sent || !errors.As(err, &e) || e.Op != "dial" {
		t.Fatalf("sent=%v err=%v, want a dial *Error", sent, err)
	}
}

func TestReloadingRealClock(t *testing.T) {
	l := listenPath(t)
	n := Notifier{LookupEnv: envOf(map[string]string{"NOTIFY_SOCKET": l.addr})}
	var before, after unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &before); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Reloading(); err != nil {
		t.Fatal(err)
	}
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &after); err != nil {
		t.Fatal(err)
	}
	got := l.recv(t)
	first, usec, ok := strings.Cut(got, "\nMONOTONIC_USEC=")
	if !ok || first != "RELOADING=1" {
		t.Fatalf("got %q", got)
	}
	v, err := strconv.ParseInt(usec, 10, 64)
	if err != nil {
		t.Fatalf("MONOTONIC_USEC %q: %v", usec, err)
	}
	lo, hi := before.Nano()/1000, after.Nano()/1000
	if v < lo || v > hi {
		t.Fatalf("MONOTONIC_USEC %d not within CLOCK_MONOTONIC [%d, %d]", v, lo, hi)
	}
}

func TestReloadingWithoutClock(t *testing.T) {
	l := listenPath(t)
	n := Notifier{
		LookupEnv: envOf(map[string]string{"NOTIFY_SOCKET": l.addr}),
		Monotonic: func() (time.Duration, error) { return 0, errors.New("no clock") },
	}
	if _, err := n.Reloading(); err != nil {
		t.Fatal(err)
	}
	if got := l.recv(t); got != "RELOADING=1" {
		t.Fatalf("got %q", got)
	}
}

func TestWatchdogInterval(t *testing.T) {
	self := func() int { return 4242 }
	cases := []struct {
		env  map[string]string
		want time.Duration
		ok   bool
	}{
		{map[string]string{}, 0, false},
		{map[string]string{"WATCHDOG_USEC": "30000000"}, 30 * time.Second, true},
		{map[string]string{"WATCHDOG_USEC": "500", "WATCHDOG_PID": "4242"}, 500 * time.Microsecond, true},
		{map[string]string{"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4243"}, 0, false},
		{map[string]string{"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}, 0, false},
		{map[string]string{"WATCHDOG_USEC": "0"}, 0, false},
		{map[string]string{"WATCHDOG_USEC": "-5"}, 0, false},
		{map[string]string{"WATCHDOG_USEC": "1s"}, 0, false},
		{map[string]string{"WATCHDOG_USEC": "18446744073709551615"}, 0, false},
		{map[string]string{"WATCHDOG_USEC": "9223372036854775"}, 9223372036854775 * time.Microsecond, true},
		{map[string]string{"WATCHDOG_USEC": "9223372036854776"}, 0, false},
	}
	for _, c := range cases {
		got, ok := Notifier{LookupEnv: envOf(c.env), PID: self}.WatchdogInterval()
		if got != c.want || ok != c.ok {
			t.Errorf("%v: got %v, %v; want %v, %v", c.env, got, ok, c.want, c.ok)
		}
	}
}

func TestRunWatchdog(t *testing.T) {
	l := listenAbstract(t)
	var healthy atomic.Bool
	healthy.Store(true)
	n := Notifier{LookupEnv: envOf(map[string]string{
		"NOTIFY_SOCKET": l.addr,
		"WATCHDOG_USEC": "40000", // 40ms: keep-alives every 20ms
	})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- n.RunWatchdog(ctx, func(context.Context) error {
			if healthy.Load() {
				return nil
			}
			return errors.New("unhealthy")
		})
	}()
	for range 3 {
		if got := l.recv(t); got != "WATCHDOG=1" {
			t.Fatalf("got %q", got)
		}
	}
	healthy.Store(false)
	// Drain a keep-alive that may have been sent before the switch.
	_ = l.conn.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_, _, _ = l.conn.ReadFromUnix(make([]byte, 64))
	l.none(t, 150*time.Millisecond)
	healthy.Store(true)
	if got := l.recv(t); got != "WATCHDOG=1" {
		t.Fatalf("after recovery got %q", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunWatchdog: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunWatchdog did not return after cancel")
	}
}

func TestRunWatchdogDisabled(t *testing.T) {
	n := Notifier{LookupEnv: envOf(map[string]string{"NOTIFY_SOCKET": "/nonexistent/notify.sock"})}
	done := make(chan error, 1)
	go func() { done <- n.RunWatchdog(context.Background(), nil) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunWatchdog without WATCHDOG_USEC: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunWatchdog without WATCHDOG_USEC did not return")
	}
}

func TestRunWatchdogSendFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone.sock")
	n := Notifier{LookupEnv: envOf(map[string]string{"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"})}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := n.RunWatchdog(ctx, nil)
	var e *Error
	if !errors.As(err, &e) || e.Op != "watchdog" {
		t.Fatalf("err %v, want a watchdog *Error", err)
	}
}

func TestProcessEnvironmentByDefault(t *testing.T) {
	l := listenPath(t)
	t.Setenv("NOTIFY_SOCKET", l.addr)
	if sent, err := (Notifier{}).Ready(); !sent || err != nil {
		t.Fatalf("sent=%v err=%v", sent, err)
	}
	if got := l.recv(t); got != "READY=1" {
		t.Fatalf("got %q", got)
	}
}
