package testbed

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// RunMain runs setup with a [MainTB], then the package's tests, then the
// Cleanup functions that setup registered, and returns the exit code for
// os.Exit. Use it from TestMain to start servers once per package:
//
//	func TestMain(m *testing.M) {
//		os.Exit(testbed.RunMain(m, func(tb testing.TB) {
//			testbed.Require(tb)
//			srv = testbed.StartMinIO(tb, testbed.MinIOOptions{})
//		}))
//	}
//
// If setup calls Fatal (or FailNow), the tests are not run, the cleanups run
// and RunMain returns 1 after printing the log. If setup calls Skip (as
// [Require] does when the suite is not enabled), the tests run anyway and
// are expected to skip themselves. setup's log is printed with -v or on
// failure. RunMain calls flag.Parse.
func RunMain(m *testing.M, setup func(tb testing.TB)) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	tb := NewMainTB("TestMain")
	ok := tb.Do(setup)
	code := 1
	if ok {
		code = m.Run()
		if code != 0 {
			// Makes the servers' Cleanups show the tail of their output.
			tb.Fail()
		}
	}
	if !tb.Close() {
		code = 1
	}
	if !ok || tb.Failed() || testing.Verbose() {
		tb.flush(os.Stderr)
	}
	return code
}

// MainTB is a testing.TB for code that runs outside a test, such as
// TestMain: Log collects lines, Fatal and Skip end the function given to
// [MainTB.Do], and Cleanup functions run at [MainTB.Close] in last-in
// first-out order. Fatal, FailNow, Skip and SkipNow call runtime.Goexit as in
// a test, so they may be called only from inside Do.
//
// Its methods are safe for concurrent use.
type MainTB struct {
	testing.TB // nil; only satisfies the interface's unexported method

	name   string
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	log      bytes.Buffer
	cleanups []func()
	failed   bool
	skipped  bool
	closed   bool
}

var _ testing.TB = (*MainTB)(nil)

// NewMainTB returns a MainTB whose Name is name.
func NewMainTB(name string) *MainTB {
	ctx, cancel := context.WithCancel(context.Background())
	return &MainTB{name: name, ctx: ctx, cancel: cancel}
}

// Do runs f(m) on a new goroutine and waits for it. It reports whether f
// returned normally or stopped with Skip; false means it failed (Fatal,
// FailNow, Error or a panic, which is logged and counted as a failure).
func (m *MainTB) Do(f func(tb testing.TB)) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				m.Errorf("panic: %v", r)
			}
		}()
		f(m)
	}()
	<-done
	return !m.Failed()
}

// Close cancels Context, then runs the Cleanup functions, last registered
// first, each as by Do. It reports whether the MainTB has not failed. Calling
// it again does nothing more.
func (m *MainTB) Close() bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return !m.Failed()
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	for {
		m.mu.Lock()
		n := len(m.cleanups)
		if n == 0 {
			m.mu.Unlock()
			break
		}
		f := m.cleanups[n-1]
		m.cleanups = m.cleanups[:n-1]
		m.mu.Unlock()
		m.Do(func(testing.TB) { f() })
	}
	return !m.Failed()
}

// Logs returns everything logged so far.
func (m *MainTB) Logs() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.log.String()
}

func (m *MainTB) flush(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.log.Len() > 0 {
		io.Copy(w, &m.log)
	}
}

// ArtifactDir returns a new directory as TempDir does.
func (m *MainTB) ArtifactDir() string { return m.TempDir() }

// Attr logs key and value.
func (m *MainTB) Attr(key, value string) { m.Logf("=== ATTR %s %s", key, value) }

// Cleanup registers f to run at Close.
func (m *MainTB) Cleanup(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cleanups = append(m.cleanups, f)
}

// Chdir changes the working directory until Close.
func (m *MainTB) Chdir(dir string) {
	old, err := os.Getwd()
	if err != nil {
		m.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		m.Fatal(err)
	}
	m.Cleanup(func() { _ = os.Chdir(old) })
}

// Context returns a context canceled when Close starts.
func (m *MainTB) Context() context.Context { return m.ctx }

// Error logs args and marks the MainTB failed.
func (m *MainTB) Error(args ...any) { m.Log(args...); m.Fail() }

// Errorf logs a formatted message and marks the MainTB failed.
func (m *MainTB) Errorf(format string, args ...any) { m.Logf(format, args...); m.Fail() }

// Fail marks the MainTB failed.
func (m *MainTB) Fail() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failed = true
}

// FailNow marks the MainTB failed and ends the function given to Do.
func (m *MainTB) FailNow() { m.Fail(); runtime.Goexit() }

// Failed reports whether the MainTB has failed.
func (m *MainTB) Failed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed
}

// Fatal is Log then FailNow.
func (m *MainTB) Fatal(args ...any) { m.Log(args...); m.FailNow() }

// Fatalf is Logf then FailNow.
func (m *MainTB) Fatalf(format string, args ...any) { m.Logf(format, args...); m.FailNow() }

// Helper does nothing.
func (m *MainTB) Helper() {}

// Log records its arguments as fmt.Sprintln does.
func (m *MainTB) Log(args ...any) { m.write(fmt.Sprintln(args...)) }

// Logf records a formatted message.
func (m *MainTB) Logf(format string, args ...any) { m.write(fmt.Sprintf(format, args...)) }

func (m *MainTB) write(s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		fmt.Fprintf(&m.log, "    %s: %s\n", m.name, line)
	}
}

// Name returns the name given to NewMainTB.
func (m *MainTB) Name() string { return m.name }

// Output returns a writer whose lines are logged.
func (m *MainTB) Output() io.Writer { return logWriter{m} }

type logWriter struct{ m *MainTB }

func (w logWriter) Write(p []byte) (int, error) { w.m.write(string(p)); return len(p), nil }

// Setenv sets an environment variable until Close.
func (m *MainTB) Setenv(key, value string) {
	old, had := os.LookupEnv(key)
	if err := os.Setenv(key, value); err != nil {
		m.Fatal(err)
	}
	m.Cleanup(func() {
		if had {
			_ = os.Setenv(key, old)
		} else {
			_ = os.Unsetenv(key)
		}
	})
}

// Skip is Log then SkipNow.
func (m *MainTB) Skip(args ...any) { m.Log(args...); m.SkipNow() }

// Skipf is Logf then SkipNow.
func (m *MainTB) Skipf(format string, args ...any) { m.Logf(format, args...); m.SkipNow() }

// SkipNow marks the MainTB skipped and ends the function given to Do.
func (m *MainTB) SkipNow() {
	m.mu.Lock()
	m.skipped = true
	m.mu.Unlock()
	runtime.Goexit()
}

// Skipped reports whether Skip was called.
func (m *MainTB) Skipped() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.skipped
}

// TempDir returns a new directory that Close removes.
func (m *MainTB) TempDir() string {
	dir, err := os.MkdirTemp("", "s3seal-testbed-*")
	if err != nil {
		m.Fatalf("testbed: temp dir: %v", err)
	}
	m.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			m.Errorf("testbed: remove temp dir: %v", err)
		}
	})
	return dir
}
