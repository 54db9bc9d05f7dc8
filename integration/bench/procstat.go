package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// procTree returns pid and its descendants (through
// /proc/PID/task/TID/children), pid first. A process that has gone is left
// out; a pid that does not exist gives an empty list.
func procTree(pid int) []int {
	if pid <= 0 {
		return nil
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		return nil
	}
	out := []int{pid}
	for i := 0; i < len(out) && i < 256; i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", out[i]))
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, s := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(s); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// cpuSeconds returns the user plus system CPU time of pid, from
// /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU returns utime+stime in seconds from the contents of
// /proc/PID/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStatCPU(b []byte) (float64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: /proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// After the name: state(3) ppid(4) ... utime(14) stime(15); f[0] is field 3.
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: /proc stat: %d fields after the name, want at least 13", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: /proc stat: utime %q stime %q", f[11], f[12])
	}
	return float64(ut+st) / clockTicks, nil
}

// treeCPU returns the CPU seconds of pid and its descendants.
func treeCPU(pid int) float64 {
	var sum float64
	for _, p := range procTree(pid) {
		if s, err := cpuSeconds(p); err == nil {
			sum += s
		}
	}
	return sum
}

// rssBytes returns VmRSS of pid in bytes, from /proc/PID/status.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatusKB(b, "VmRSS")
}

// parseStatusKB returns the value of field (such as "VmRSS") in bytes from
// the contents of /proc/PID/status, where it is given in kB.
func parseStatusKB(b []byte, field string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("bench: /proc status: %s is %q", field, rest)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc status: %s: %w", field, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("bench: /proc status: no %s", field)
}

// treeRSS returns the summed VmRSS of pid and its descendants (nginx's
// master and workers, say).
func treeRSS(pid int) int64 {
	var sum int64
	for _, p := range procTree(pid) {
		if r, err := rssBytes(p); err == nil {
			sum += r
		}
	}
	return sum
}

// rssSampler records the largest resident set of a process tree seen while
// it runs. VmHWM cannot be reset between workloads, so the peak of each
// workload is sampled from VmRSS at a fixed interval instead.
type rssSampler struct {
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex // protects peak
	peak int64
}

// startRSSSampler samples the tree of pid every interval until Stop. A pid
// of 0 (no process to watch) gives a sampler whose peak stays 0.
func startRSSSampler(pid int, interval time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	if pid <= 0 {
		close(s.done)
		return s
	}
	s.record(treeRSS(pid))
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.record(treeRSS(pid))
			}
		}
	}()
	return s
}

func (s *rssSampler) record(v int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peak = max(s.peak, v)
}

// Stop ends sampling and returns the peak in bytes. Call it once.
func (s *rssSampler) Stop() int64 {
	select {
	case <-s.done:
	default:
		close(s.stop)
		<-s.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}
