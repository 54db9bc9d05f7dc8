// Package sdnotify tells the service manager (systemd) about s3seal's state
// through the sd_notify datagram protocol: ready to serve, reloading its
// configuration, stopping, a free-form status line, and watchdog keep-alives.
//
// It has no dependencies beyond the standard library and no package-level
// state: a [Notifier] reads the environment through its LookupEnv field, so
// tests need not touch the process environment.
//
// # Contracts
//
//   - When $NOTIFY_SOCKET is unset or empty, every call does nothing and
//     reports (false, nil): s3seal runs the same outside systemd.
//   - $NOTIFY_SOCKET is an absolute path of a unix datagram socket, or an
//     abstract socket name written with a leading "@". Anything else is an
//     error; nothing is sent.
//   - Each call sends exactly one datagram, so a multi-line state such as
//     "RELOADING=1\nMONOTONIC_USEC=…" arrives atomically. A send that cannot
//     complete within one second fails instead of blocking.
//   - The environment is never modified: children started by s3seal would
//     inherit NOTIFY_SOCKET, which s3seal does not do.
//
// # Reloading
//
// Type=notify-reload units (systemd 253 and later) expect "RELOADING=1"
// together with "MONOTONIC_USEC=" the CLOCK_MONOTONIC time in microseconds,
// then "READY=1" once the new configuration is in use. [Notifier.Reloading]
// sends the first; [Notifier.Ready] the second. Type=notify units accept the
// same messages.
//
// # Watchdog
//
// With WatchdogSec= set, systemd passes WATCHDOG_USEC (and WATCHDOG_PID) and
// restarts the service if no "WATCHDOG=1" arrives within that time.
// [Notifier.WatchdogInterval] reads it; [Notifier.RunWatchdog] sends the
// keep-alive at half the interval while a health check passes.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Well-known states. Notify accepts any newline-separated assignments.
const (
	StateReady     = "READY=1"
	StateReloading = "RELOADING=1"
	StateStopping  = "STOPPING=1"
	StateWatchdog  = "WATCHDOG=1"
)

// sendTimeout bounds one datagram send.
const sendTimeout = time.Second

// Notifier sends sd_notify messages. Its zero value reads the process
// environment, the real CLOCK_MONOTONIC and the real process id.
type Notifier struct {
	// LookupEnv reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID; nil
	// means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Monotonic returns the CLOCK_MONOTONIC time (time since an arbitrary
	// fixed point, as systemd reads it) for MONOTONIC_USEC; nil means the
	// system clock. Where that clock cannot be read, Reloading omits
	// MONOTONIC_USEC.
	Monotonic func() (time.Duration, error)
	// PID returns this process's id, compared with WATCHDOG_PID; nil means
	// os.Getpid.
	PID func() int
}

// Error is a failure to read the socket address or to send a message.
type Error struct {
	// Op is what failed: "address", "dial", "send", "watchdog" or "clock".
	Op string
	// Err is the underlying error.
	Err error
}

func (e *Error) Error() string { return "sdnotify: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ErrBadSocket is wrapped by the error for a NOTIFY_SOCKET that is neither an
// absolute path nor an abstract "@name".
var ErrBadSocket = errors.New("NOTIFY_SOCKET is neither an absolute path nor an abstract @name")

func (n Notifier) env(name string) string {
	look := n.LookupEnv
	if look == nil {
		look = os.LookupEnv
	}
	v, _ := look(name)
	return v
}

// Socket returns the notification socket's address from NOTIFY_SOCKET: ""
// when unset, an error wrapping [ErrBadSocket] when unusable.
func (n Notifier) Socket() (string, error) {
	addr := n.env("NOTIFY_SOCKET")
	switch {
	case addr == "":
		return "", nil
	case strings.HasPrefix(addr, "/"):
		return addr, nil
	case strings.HasPrefix(addr, "@") && len(addr) > 1:
		// The net package maps a leading '@' to the abstract namespace.
		return addr, nil
	}
	return "", &Error{Op: "address", Err: fmt.Errorf("%w: %q", ErrBadSocket, addr)}
}

// Notify sends state (one or more newline-separated VAR=value assignments)
// as one datagram. It reports whether a message was sent: false with a nil
// error means no service manager listens (NOTIFY_SOCKET is unset).
func (n Notifier) Notify(state string) (bool, error) {
	addr, err := n.Socket()
	if err != nil || addr == "" {
		return false, err
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false, &Error{Op: "dial", Err: err}
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return false, &Error{Op: "send", Err: err}
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, &Error{Op: "send", Err: err}
	}
	return true, nil
}

// Ready reports that s3seal serves: at start once the listeners are bound,
// and after a reload once the new configuration is in use.
func (n Notifier) Ready() (bool, error) { return n.Notify(StateReady) }

// Stopping reports that s3seal began its graceful shutdown.
func (n Notifier) Stopping() (bool, error) { return n.Notify(StateStopping) }

// Reloading reports that s3seal began reloading its configuration, with
// MONOTONIC_USEC as Type=notify-reload requires. Send Ready when done.
func (n Notifier) Reloading() (bool, error) {
	mono := n.Monotonic
	if mono == nil {
		mono = monotonic
	}
	d, err := mono()
	if err != nil {
		// Type=notify units do not need the timestamp; still say it.
		return n.Notify(StateReloading)
	}
	return n.Notify(StateReloading + "\nMONOTONIC_USEC=" + strconv.FormatInt(d.Microseconds(), 10))
}

// Status sends a one-line, human-readable status shown by "systemctl
// status". Line breaks in s are replaced by spaces.
func (n Notifier) Status(s string) (bool, error) {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	return n.Notify("STATUS=" + s)
}

// Watchdog sends one watchdog keep-alive.
func (n Notifier) Watchdog() (bool, error) { return n.Notify(StateWatchdog) }

// WatchdogInterval returns the watchdog timeout systemd expects keep-alives
// within, from WATCHDOG_USEC, and whether the watchdog is enabled for this
// process: false when WATCHDOG_USEC is unset, not a positive integer, or
// WATCHDOG_PID names another process.
func (n Notifier) WatchdogInterval() (time.Duration, bool) {
	usec, err := strconv.ParseUint(n.env("WATCHDOG_USEC"), 10, 63)
	if err != nil || usec == 0 {
		return 0, false
	}
	if p := n.env("WATCHDOG_PID"); p != "" {
		pid, err := strconv.Atoi(p)
		if err != nil {
			return 0, false
		}
		self := n.PID
		if self == nil {
			self = os.Getpid
		}
		if pid != self() {
			return 0, false
		}
	}
	if usec > uint64(1<<63-1)/uint64(time.Microsecond) {
		return 0, false
	}
	return time.Duration(usec) * time.Microsecond, true
}

// RunWatchdog sends a keep-alive every half watchdog interval until ctx ends,
// as long as healthy (nil means always healthy) returns nil; while it
// fails, no keep-alive is sent, so systemd restarts s3seal once the
// interval passes. RunWatchdog returns nil at once when the watchdog is not
// enabled (see [Notifier.WatchdogInterval]), nil when ctx ends, and an error
// when a keep-alive cannot be sent.
func (n Notifier) RunWatchdog(ctx context.Context, healthy func(context.Context) error) error {
	iv, ok := n.WatchdogInterval()
	if !ok {
		return nil
	}
	tick := time.NewTicker(max(iv/2, time.Millisecond))
	defer tick.Stop()
	beat := func() error {
		if healthy != nil && healthy(ctx) != nil {
			return nil
		}
		if _, err := n.Watchdog(); err != nil {
			return &Error{Op: "watchdog", Err: err}
		}
		return nil
	}
	if err := beat(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := beat(); err != nil {
				return err
			}
		}
	}
}
