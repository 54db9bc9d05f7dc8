package rewrap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"
)

// StateVersion is the version of the state file format.
const StateVersion = 1

// maxKeySize is S3's longest object key.
const maxKeySize = 1024

// maxStateSize bounds what LoadState reads.
const maxStateSize = 1 << 20

// State is the progress of a rewrap pass over one bucket and prefix, kept
// in a JSON file between runs:
//
//	{"version":1,"bucket":"b","prefix":"p/","all_versions":false,
//	 "after":"p/k17","finished":false,"updated":"2026-…",
//	 "totals":{"scanned":18,"rewrapped":17,"current":1,"failed":0}}
//
// Every key up to and including After has been dealt with (rewrapped,
// found current, skipped or failed); a run continues with the keys after
// it. Totals add up the runs of the pass. A finished pass starts over.
type State struct {
	Version     int       `json:"version"`
	Bucket      string    `json:"bucket"`
	Prefix      string    `json:"prefix"`
	AllVersions bool      `json:"all_versions"`
	After       string    `json:"after"`
	Finished    bool      `json:"finished"`
	Updated     time.Time `json:"updated"`
	Totals      Counts    `json:"totals"`
}

// Counts are the numbers of a summary.
type Counts struct {
	// Scanned counts objects (object versions with AllVersions) looked at.
	Scanned   int64 `json:"scanned"`
	Rewrapped int64 `json:"rewrapped"`
	Current   int64 `json:"current"`
	Failed    int64 `json:"failed"`
	// Skipped counts skipped objects by reason.
	Skipped map[string]int64 `json:"skipped,omitempty"`
}

// SkippedTotal returns the number of skipped objects.
func (c Counts) SkippedTotal() int64 {
	var n int64
	for _, v := range c.Skipped {
		n += v
	}
	return n
}

func (c Counts) clone() Counts {
	c.Skipped = maps.Clone(c.Skipped)
	return c
}

func (c *Counts) add(o Counts) {
	c.Scanned += o.Scanned
	c.Rewrapped += o.Rewrapped
	c.Current += o.Current
	c.Failed += o.Failed
	for k, v := range o.Skipped {
		if c.Skipped == nil {
			c.Skipped = map[string]int64{}
		}
		c.Skipped[k] += v
	}
}

func (c *Counts) count(r Result) {
	c.Scanned++
	switch r.Outcome {
	case Rewrapped:
		c.Rewrapped++
	case Current:
		c.Current++
	case Skipped:
		if c.Skipped == nil {
			c.Skipped = map[string]int64{}
		}
		c.Skipped[r.Reason]++
	default:
		c.Failed++
	}
}

// StateError reports a state file that cannot be used.
type StateError struct {
	Path   string
	Reason string
	Err    error
}

func (e *StateError) Error() string {
	s := "rewrap: state file"
	if e.Path != "" {
		s += " " + e.Path
	}
	s += ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *StateError) Unwrap() error { return e.Err }

// ParseState decodes and checks a state file's contents. It refuses
// unknown fields, another version, trailing data, a key that is not valid
// UTF-8 or longer than S3 allows, and negative counts.
func ParseState(b []byte) (*State, error) {
	if len(b) > maxStateSize {
		return nil, &StateError{Reason: fmt.Sprintf("larger than %d bytes", maxStateSize)}
	}
	if !utf8.Valid(b) {
		// encoding/json would turn invalid bytes into U+FFFD: another key.
		return nil, &StateError{Reason: "not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s State
	if err := dec.Decode(&s); err != nil {
		return nil, &StateError{Reason: "not a state file", Err: err}
	}
	if dec.More() {
		return nil, &StateError{Reason: "trailing data after the state"}
	}
	if s.Version != StateVersion {
		return nil, &StateError{Reason: fmt.Sprintf("version %d, want %d", s.Version, StateVersion)}
	}
	if s.Bucket == "" {
		return nil, &StateError{Reason: "no bucket"}
	}
	for _, k := range []string{s.Bucket, s.Prefix, s.After} {
		if !utf8.ValidString(k) || len(k) > maxKeySize {
			return nil, &StateError{Reason: "bucket, prefix or key is not valid UTF-8 or too long"}
		}
	}
	if s.After != "" && (len(s.After) < len(s.Prefix) || s.After[:len(s.Prefix)] != s.Prefix) {
		return nil, &StateError{Reason: "the last key done is not under the prefix"}
	}
	t := s.Totals
	if t.Scanned < 0 || t.Rewrapped < 0 || t.Current < 0 || t.Failed < 0 {
		return nil, &StateError{Reason: "negative count"}
	}
	sum := t.Rewrapped + t.Current + t.Failed
	for _, v := range t.Skipped {
		if v < 0 {
			return nil, &StateError{Reason: "negative count"}
		}
		sum += v
	}
	if sum != t.Scanned {
		return nil, &StateError{Reason: "counts do not add up to the number scanned"}
	}
	return &s, nil
}

// Marshal encodes the state as ParseState reads it.
func (s *State) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// LoadState reads the state file at path. A file that does not exist gives
// (nil, nil).
func LoadState(path string) (*State, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &StateError{Path: path, Reason: "cannot open", Err: err}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return nil, &StateError{Path: path, Reason: "cannot read", Err: err}
	}
	s, err := ParseState(b)
	if err != nil {
		var se *StateError
		if errors.As(err, &se) {
			se.Path = path
		}
		return nil, err
	}
	return s, nil
}

// SaveState writes s to path atomically (a temporary file in the same
// directory, synced, then renamed), with mode 0600.
func SaveState(path string, s *State) error {
	b, err := s.Marshal()
	if err != nil {
		return &StateError{Path: path, Reason: "cannot encode", Err: err}
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return &StateError{Path: path, Reason: "cannot write", Err: err}
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return &StateError{Path: path, Reason: "cannot write", Err: err}
	}
	if _, err := f.Write(b); err != nil {
		return &StateError{Path: path, Reason: "cannot write", Err: err}
	}
	if err := f.Sync(); err != nil {
		return &StateError{Path: path, Reason: "cannot write", Err: err}
	}
	if err := f.Close(); err != nil {
		return &StateError{Path: path, Reason: "cannot write", Err: err}
	}
	if err := os.Rename(tmp, path); err != nil {
		return &StateError{Path: path, Reason: "cannot write", Err: err}
	}
	ok = true
	return nil
}

// matches reports whether s belongs to a pass over bucket/prefix with the
// same version mode.
func (s *State) matches(bucket, prefix string, allVersions bool) bool {
	return s.Bucket == bucket && s.Prefix == prefix && s.AllVersions == allVersions
}

// tracker turns out-of-order completions of sequentially numbered keys
// into the key up to which everything is done.
type tracker struct {
	next  int64            // the lowest sequence number not yet done
	done  map[int64]string // completions above next, by sequence number
	after string           // the key of next-1
}

func newTracker(after string) *tracker {
	return &tracker{done: map[int64]string{}, after: after}
}

// finish records that key number seq (0-based, in listing order) is done
// and reports whether the watermark moved.
func (t *tracker) finish(seq int64, key string) bool {
	if seq < t.next {
		return false
	}
	t.done[seq] = key
	moved := false
	for {
		k, ok := t.done[t.next]
		if !ok {
			return moved
		}
		delete(t.done, t.next)
		t.after = k
		t.next++
		moved = true
	}
}
