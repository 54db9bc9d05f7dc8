package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
	stopGrace = 10 * time.Second
	// killWait bounds the wait for a process after SIGKILL.
	killWait = 10 * time.Second
	// tailBytes is how much of a process's output a failing test shows.
	tailBytes = 4 << 10
)

// Process is a child process started by [StartProcess]: a server of the test
// bed or s3seal itself. Its standard output and error go to one log file;
// Stop, Kill and the test's Cleanup end it and wait for it.
//
// A Process runs in its own process group; Stop and Kill signal the whole
// group, so anything it forked ends with it. Its methods are safe for
// concurrent use.
type Process struct {
	name    string
	path    string
	args    []string
	env     []string
	logPath string
	secrets []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
	err  error         // cmd.Wait's result, valid once done is closed
}

// StartProcess starts the binary name with args. name is a path if it
// contains a slash; otherwise it is looked up in [BinDir], then in $PATH. A
// binary that cannot be found or started fails the test with what to run.
//
// The process gets the test's environment without AWS_*, MINIO_*, VGW_*,
// KMS_* and PEBBLE_* variables, plus env ("KEY=value" entries, which win).
// Its output is captured to a file under t.TempDir(); when the test fails,
// the tail of that file is logged, with the values of env entries whose names
// contain SECRET, PASSWORD, TOKEN or KEY replaced by "[REDACTED]".
//
// A Cleanup stops the process (see [Process.Stop]) when the test ends.
func StartProcess(t testing.TB, name string, env []string, args ...string) *Process {
	t.Helper()
	path, err := lookBinary(name)
	if err != nil {
		t.Fatalf("testbed: %v; %s", err, installHint)
	}
	dir := t.TempDir()
	p := &Process{
		name:    filepath.Base(name),
		path:    path,
		args:    append([]string(nil), args...),
		env:     childEnv(env),
		logPath: filepath.Join(dir, filepath.Base(name)+".log"),
		secrets: secretValues(env),
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testbed: last output of %s (%s):\n%s", p.name, p.logPath, p.tail(tailBytes))
		}
	})
	if err := p.start(); err != nil {
		t.Fatalf("testbed: start %s: %v", p.name, err)
	}
	t.Cleanup(func() { p.Stop(t) })
	return p
}

// lookBinary resolves name as StartProcess documents.
func lookBinary(name string) (string, error) {
	if strings.Contains(name, "/") {
		if _, err := os.Stat(name); err != nil {
			return "", fmt.Errorf("binary %s: %w", name, err)
		}
		return name, nil
	}
	p := filepath.Join(BinDir(), name)
	if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("binary %s not found in %s nor in $PATH", name, BinDir())
}

var droppedEnvPrefixes = []string{"AWS_", "MINIO_", "VGW_", "KMS_", "PEBBLE_"}

func childEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		drop := false
		for _, p := range droppedEnvPrefixes {
			if strings.HasPrefix(kv, p) {
				drop = true
				break
			}
		}
		if !drop {
			env = append(env, kv)
		}
	}
	// exec.Cmd keeps the last value of a duplicated key, so extra wins.
	return append(env, extra...)
}

// secretValues returns the values of env entries whose names look secret,
// and each part after a colon (MINIO_KMS_SECRET_KEY is "name:base64").
func secretValues(env []string) []string {
	var out []string
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || len(v) < 6 {
			continue
		}
		if !secretName(strings.ToUpper(k)) {
			continue
		}
		out = append(out, v)
		if _, after, ok := strings.Cut(v, ":"); ok && len(after) >= 6 {
			out = append(out, after)
		}
	}
	return out
}

// secretName reports whether an upper-case variable name looks like it
// holds a secret. Access key IDs name a user and are not secret.
func secretName(k string) bool {
	for _, w := range []string{"SECRET", "PASSWORD", "TOKEN"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return strings.Contains(k, "KEY") && !strings.Contains(k, "ACCESS_KEY")
}

func (p *Process) start() error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // the child holds its own descriptor
	fmt.Fprintf(logf, "=== %s %s: %s %s\n", time.Now().Format(time.RFC3339Nano), p.name, p.path, strings.Join(p.args, " "))

	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.err = cmd, done, nil
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		if p.cmd == cmd {
			p.err = err
		}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// PID returns the process ID of the current run (0 before the first start).
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Exited returns a channel closed when the current run has exited.
func (p *Process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Running reports whether the current run has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.Exited():
		return false
	default:
		return true
	}
}

// Log returns everything the process wrote to standard output and error so
// far, across restarts, with known secrets redacted.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	return p.redact(string(b))
}

// LogPath returns the file that captures the process's output. The file
// holds the raw output: it may contain secrets the process printed.
func (p *Process) LogPath() string { return p.logPath }

func (p *Process) redact(s string) string {
	for _, v := range p.secrets {
		s = strings.ReplaceAll(s, v, "[REDACTED]")
	}
	return s
}

// tail returns the last n bytes of the log, redacted, from a line start.
func (p *Process) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no output: " + err.Error() + ")"
	}
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return p.redact(string(b))
}

// Stop sends SIGTERM to the process group, waits up to 10 s, then sends
// SIGKILL and waits. It does nothing if the process has already exited and
// fails the test only if the process cannot be ended.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	if err := p.stop(stopGrace); err != nil {
		t.Fatalf("testbed: stop %s: %v", p.name, err)
	}
}

// Kill sends SIGKILL to the process group and waits for the process, as a
// crash would end it.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	if err := p.stop(0); err != nil {
		t.Fatalf("testbed: kill %s: %v", p.name, err)
	}
}

// Restart starts the process again with the same binary, arguments and
// environment, appending to the same log. A running process is stopped first.
func (p *Process) Restart(t testing.TB) {
	t.Helper()
	if err := p.stop(stopGrace); err != nil {
		t.Fatalf("testbed: stop %s: %v", p.name, err)
	}
	if err := p.start(); err != nil {
		t.Fatalf("testbed: restart %s: %v", p.name, err)
	}
}

// stop ends the current run: SIGTERM and up to grace to exit (grace 0 skips
// it), then SIGKILL to the whole group. Either way, the group gets SIGKILL
// after the leader is gone, so no child of it survives.
func (p *Process) stop(grace time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	pgid := cmd.Process.Pid
	select {
	case <-done:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return nil
	default:
	}
	if grace > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-done:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			return nil
		case <-time.After(grace):
		}
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	select {
	case <-done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("pid %d still running %v after SIGKILL", pgid, killWait)
	}
}

// String names the process for messages.
func (p *Process) String() string { return fmt.Sprintf("%s (pid %d)", p.name, p.PID()) }
