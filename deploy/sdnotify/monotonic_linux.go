package sdnotify

import (
	"syscall"
	"time"
	"unsafe"
)

// clockMonotonic is CLOCK_MONOTONIC from <time.h>.
const clockMonotonic = 1

// monotonic reads CLOCK_MONOTONIC, the clock systemd compares
// MONOTONIC_USEC with.
func monotonic() (time.Duration, error) {
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0, &Error{Op: "clock", Err: errno}
	}
	return time.Duration(ts.Nano()), nil
}
