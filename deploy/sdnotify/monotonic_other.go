//go:build !linux

package sdnotify

import (
	"errors"
	"time"
)

// monotonic is unavailable where systemd does not run.
func monotonic() (time.Duration, error) {
	return 0, &Error{Op: "clock", Err: errors.New("CLOCK_MONOTONIC is read on Linux only")}
}
