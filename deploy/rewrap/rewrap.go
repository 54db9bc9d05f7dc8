package rewrap

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/proxy/authz"
)

// Outcome is what happened to one object.
type Outcome int

// Outcomes.
const (
	// Rewrapped: moved to the active key (in a dry run: would be).
	Rewrapped Outcome = iota + 1
	// Current: already under the active key.
	Current
	// Skipped: left alone, for Result.Reason.
	Skipped
	// Failed: could not be moved (Result.Err).
	Failed
)

func (o Outcome) String() string {
	switch o {
	case Rewrapped:
		return "rewrapped"
	case Current:
		return "current"
	case Skipped:
		return "skipped"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Kinds of objects.
const (
	KindEnvelope = "envelope"
	KindSSEC     = "sse-c"
	KindOther    = "other"
)

// Reasons for skipping an object.
const (
	ReasonConcurrent  = "changed concurrently, skipped; rerun"
	ReasonGone        = "deleted since it was listed"
	ReasonLocked      = "object lock (retention or legal hold)"
	ReasonArchived    = "archived storage class; restore it first"
	ReasonNotSealed   = "not encrypted with s3seal's keys"
	ReasonForeignSSEC = "SSE-C with a key that no key-ring key derives"
	ReasonNoKeyring   = "SSE-C, but no local key ring is configured"
	ReasonHistory     = "another version of the key is locked, archived or unreadable"
)

// Defaults of Config.
const (
	DefaultConcurrency  = 4
	DefaultMaxCopySize  = 5 << 30
	DefaultPartSize     = 512 << 20
	DefaultDrainTimeout = 2 * time.Minute
	maxParts            = 10000
)

// Config configures Run. The zero value of each optional field means its
// default.
type Config struct {
	// Store is the S3 store. Required.
	Store Store
	// Bucket is the bucket to rewrap. Required.
	Bucket string
	// Prefix limits the run to keys that start with it.
	Prefix string
	// AllVersions rewrites the history of versioned keys as well (see the
	// package documentation).
	AllVersions bool
	// DryRun examines every object and reports what would change, without
	// changing anything.
	DryRun bool
	// Keys is the envelope key provider whose active key objects move to.
	// Wrap it in keys.NewCache so that objects sharing a data key cost one
	// unwrap. nil: envelope objects fail.
	Keys keys.Provider
	// Keyring derives SSE-C keys; its newest key is the active one. nil:
	// SSE-C objects are skipped.
	Keyring *local.Keyring
	// Rate is the most objects (keys, with AllVersions) started per
	// second; 0 means no limit.
	Rate float64
	// Concurrency is the number of objects worked on at once (default 4).
	Concurrency int
	// StatePath is the state file ("" for none; see State). A dry run
	// reads it but never writes it.
	StatePath string
	// MaxCopySize is the largest object copied with one CopyObject
	// (default 5 GiB, S3's limit); larger SSE-C and other objects are
	// copied in ranges of PartSize (default 512 MiB).
	MaxCopySize int64
	PartSize    int64
	// DrainTimeout bounds how long objects in flight may take to finish
	// once ctx has ended (default 2 minutes).
	DrainTimeout time.Duration
	// OnResult, if set, is called for every object, from one goroutine.
	OnResult func(Result)
	// Logger receives warnings (nil: none).
	Logger *zap.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Rand is the randomness of new seal salts (nil: crypto/rand).
	Rand io.Reader
	// MarkerWait is W of FORMAT.md section 9.4 (default
	// DefaultMarkerWait): after writing the marker .s3seal/mixed, which a
	// bucket holding version 2 objects needs before a version 1 object is
	// rewritten, rewrap waits this long.
	MarkerWait time.Duration
}

// Result is what happened to one object (one version, with AllVersions).
type Result struct {
	Key       string
	VersionID string
	// Kind is KindEnvelope, KindSSEC or KindOther ("" if unknown).
	Kind    string
	Outcome Outcome
	// From and To are the master key ids before and after: a key ring
	// name or a KMS key ARN. To is empty unless rewrapped.
	From, To string
	// NewVersionID is the version the rewrite created, if any.
	NewVersionID string
	// Reason says why an object was skipped or failed.
	Reason string
	// Err is the error of a failed object.
	Err error
	// DryRun reports that nothing was written.
	DryRun bool
}

// Summary is the outcome of Run.
type Summary struct {
	// Counts are this run's numbers.
	Counts
	// Totals add the numbers of earlier runs of the same pass (from the
	// state file) to this run's.
	Totals Counts
	// DryRun reports a dry run.
	DryRun bool
	// ResumedAfter is the key the run continued after ("" from the
	// start).
	ResumedAfter string
	// After is the key up to which everything is done.
	After string
	// Interrupted reports that the run stopped before the end (ctx ended
	// or the listing failed).
	Interrupted bool
	// CurrentOnly reports an AllVersions run on a bucket that never had
	// versioning, where only current versions exist.
	CurrentOnly bool
}

// OK reports whether the run went through and nothing failed.
func (s Summary) OK() bool { return s.Failed == 0 && !s.Interrupted }

// ConfigError reports an unusable Config or bucket setting.
type ConfigError struct{ Reason string }

func (e *ConfigError) Error() string { return "rewrap: " + e.Reason }

// runner is one Run.
type runner struct {
	cfg      Config
	log      *zap.Logger
	now      func() time.Time
	kp       keys.Provider
	provider string // kp.Name()
	activeID string // the envelope active key's id
	replay   bool   // AllVersions on a versioned bucket
	v2       *v2State
}

// Run moves every object under cfg.Bucket/cfg.Prefix to the active key. It
// returns the summary, and an error if the run could not start or the
// listing failed (the summary then covers what was done).
func Run(ctx context.Context, cfg Config) (Summary, error) {
	r, err := newRunner(ctx, cfg)
	if err != nil {
		return Summary{DryRun: cfg.DryRun}, err
	}
	return r.run(ctx)
}

func newRunner(ctx context.Context, cfg Config) (*runner, error) {
	if cfg.Store == nil {
		return nil, &ConfigError{Reason: "no store"}
	}
	if cfg.Bucket == "" {
		return nil, &ConfigError{Reason: "no bucket"}
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MaxCopySize <= 0 {
		cfg.MaxCopySize = DefaultMaxCopySize
	}
	if cfg.PartSize <= 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.MarkerWait <= 0 {
		cfg.MarkerWait = DefaultMarkerWait
	}
	r := &runner{cfg: cfg, log: cfg.Logger, now: cfg.Now, v2: &v2State{
		keyObjects: map[[envelope.WrappedKeyRefSize]byte][]byte{},
		stored:     map[[envelope.WrappedKeyRefSize]byte]bool{},
	}}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	if r.now == nil {
		r.now = time.Now
	}
	if cfg.Keys != nil {
		r.kp = newMemo(cfg.Keys)
		r.provider = cfg.Keys.Name()
		// The active key's id as it is stored (a KMS key ARN even when
		// the key is configured by alias) comes with a data key.
		dk, err := cfg.Keys.GenerateDataKey(ctx)
		if err != nil {
			return nil, fmt.Errorf("rewrap: cannot learn the active key from the key provider: %w", err)
		}
		r.activeID = dk.KeyID
		dk.Zero()
	}
	if cfg.AllVersions {
		v, err := cfg.Store.Versioning(ctx, cfg.Bucket)
		if err != nil {
			return nil, err
		}
		switch v {
		case VersioningEnabled:
			r.replay = true
		case VersioningSuspended:
			return nil, &ConfigError{Reason: fmt.Sprintf("bucket %s has versioning suspended: rewriting version histories needs versioning enabled (or rewrap current versions only)", cfg.Bucket)}
		}
	}
	return r, nil
}

// unit is one key to work on, numbered in listing order.
type unit struct {
	seq     int64
	key     string
	entries []Entry // with replay
}

type unitDone struct {
	unit
	results  []Result
	finished bool
}

func (r *runner) run(ctx context.Context) (Summary, error) {
	cfg := r.cfg
	sum := Summary{DryRun: cfg.DryRun, CurrentOnly: cfg.AllVersions && !r.replay}
	state := &State{Version: StateVersion, Bucket: cfg.Bucket, Prefix: cfg.Prefix, AllVersions: cfg.AllVersions}
	if cfg.StatePath != "" {
		old, err := LoadState(cfg.StatePath)
		if err != nil {
			return sum, err
		}
		switch {
		case old == nil:
		case !old.matches(cfg.Bucket, cfg.Prefix, cfg.AllVersions):
			return sum, &StateError{Path: cfg.StatePath, Reason: fmt.Sprintf("it belongs to a run over bucket %q, prefix %q, all versions %v; use another state file",
				old.Bucket, old.Prefix, old.AllVersions)}
		case old.Finished:
			r.log.Info("the state file records a finished pass; starting a new one", zap.String("state", cfg.StatePath))
		default:
			state = old
		}
	}
	sum.ResumedAfter = state.After
	sum.After = state.After
	before := state.Totals
	save := func(finished bool) error {
		if cfg.StatePath == "" || cfg.DryRun {
			return nil
		}
		state.After = sum.After
		state.Finished = finished
		state.Updated = r.now().UTC()
		state.Totals = before.clone()
		state.Totals.add(sum.Counts)
		return SaveState(cfg.StatePath, state)
	}
	if err := save(false); err != nil {
		return sum, err
	}

	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var drainMu sync.Mutex
	var drain *time.Timer
	stopDrain := context.AfterFunc(ctx, func() {
		drainMu.Lock()
		drain = time.AfterFunc(cfg.DrainTimeout, cancelWork)
		drainMu.Unlock()
	})
	defer func() {
		stopDrain()
		drainMu.Lock()
		if drain != nil {
			drain.Stop()
		}
		drainMu.Unlock()
	}()

	limiter := NewLimiter(cfg.Rate, r.now, nil)
	work := make(chan unit)
	out := make(chan unitDone)
	var listErr error
	go func() {
		defer close(work)
		var seq int64
		emit := func(u unit) error {
			if err := limiter.Wait(ctx); err != nil {
				return err
			}
			u.seq = seq
			select {
			case work <- u:
				seq++
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if r.replay {
			listErr = cfg.Store.ListVersions(ctx, cfg.Bucket, cfg.Prefix, state.After, func(key string, entries []Entry) error {
				if strings.HasPrefix(key, authz.StatePrefix) {
					return nil
				}
				return emit(unit{key: key, entries: entries})
			})
		} else {
			listErr = cfg.Store.List(ctx, cfg.Bucket, cfg.Prefix, state.After, func(key string) error {
				if strings.HasPrefix(key, authz.StatePrefix) {
					return nil
				}
				return emit(unit{key: key})
			})
		}
	}()
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range work {
				var res []Result
				if r.replay {
					res = r.history(workCtx, u.key, u.entries)
				} else {
					res = []Result{r.object(workCtx, u.key)}
				}
				out <- unitDone{unit: u, results: res, finished: workCtx.Err() == nil}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()

	tr := newTracker(state.After)
	var saveErr error
	lastSave := r.now()
	unfinished := 0
	for d := range out {
		if !d.finished {
			unfinished++
			continue
		}
		for _, res := range d.results {
			res.DryRun = cfg.DryRun
			sum.count(res)
			if cfg.OnResult != nil {
				cfg.OnResult(res)
			}
		}
		if tr.finish(d.seq, d.key) {
			sum.After = tr.after
			if now := r.now(); now.Sub(lastSave) >= 500*time.Millisecond {
				lastSave = now
				if err := save(false); err != nil && saveErr == nil {
					saveErr = err
					r.log.Warn("cannot save the state", zap.Error(err))
				}
			}
		}
	}
	sum.Interrupted = listErr != nil || unfinished > 0
	if err := save(!sum.Interrupted); err != nil && saveErr == nil {
		saveErr = err
	}
	sum.Totals = before.clone()
	sum.Totals.add(sum.Counts)
	if listErr != nil && ctx.Err() == nil {
		return sum, listErr
	}
	return sum, saveErr
}

// object rewraps the current version of key.
func (r *runner) object(ctx context.Context, key string) Result {
	res := Result{Key: key}
	o, master, err := r.head(ctx, key, "")
	if err != nil {
		if isNotFound(err) {
			res.Outcome, res.Reason = Skipped, ReasonGone
			return res
		}
		return failed(res, err)
	}
	res.VersionID = o.VersionID
	p := r.decide(o, master)
	res.Kind, res.From = p.kind, p.from
	if p.outcome != Rewrapped {
		res.Outcome, res.Reason, res.Err = p.outcome, p.reason, p.err
		return res
	}
	w, err := r.prepare(ctx, o, p)
	if err != nil {
		return failed(res, err)
	}
	defer w.zero()
	res.To = w.to
	if r.cfg.DryRun {
		res.Outcome = Rewrapped
		return res
	}
	// Replace the current version only if it is still the one read: the
	// single copy reads the current version, pinned to its ETag; a part
	// copy reads the exact version (and ETag), and the upload completes
	// only if the current ETag is still the same.
	w.replaceCurrent = true
	written, err := r.write(ctx, w)
	if err != nil {
		if isPrecondition(err) || isNotFound(err) {
			res.Outcome, res.Reason = Skipped, ReasonConcurrent
			return res
		}
		return failed(res, err)
	}
	res.Outcome = Rewrapped
	res.NewVersionID = written.VersionID
	return res
}

func failed(res Result, err error) Result {
	res.Outcome = Failed
	res.Err = err
	res.Reason = err.Error()
	return res
}

// head reads an object version's properties. For an SSE-C object it finds
// the key-ring key that opens it (master; "" if none does or there is no
// key ring).
func (r *runner) head(ctx context.Context, key, versionID string) (*Object, string, error) {
	in := HeadInput{Bucket: r.cfg.Bucket, Key: key, VersionID: versionID}
	o, err := r.cfg.Store.Head(ctx, in)
	if err == nil {
		return o, "", nil
	}
	if status(err) != 400 {
		return nil, "", err
	}
	// S3 answers 400 to a HEAD without the customer key of an SSE-C
	// object (and 403 to one with a wrong key).
	if r.cfg.Keyring == nil {
		return &Object{Key: key, VersionID: versionID, SSEC: true}, "", nil
	}
	for _, name := range r.cfg.Keyring.Names() {
		k, derr := r.cfg.Keyring.DeriveSSECKey(name, r.cfg.Bucket, key)
		if derr != nil {
			return nil, "", derr
		}
		in.SSECKey = &k
		o, err := r.cfg.Store.Head(ctx, in)
		clear(k[:])
		switch {
		case err == nil:
			o.SSEC = true
			return o, name, nil
		case status(err) == 403:
			continue
		default:
			return nil, "", err
		}
	}
	return &Object{Key: key, VersionID: versionID, SSEC: true}, "", nil
}

// plan is the decision about one object version.
type plan struct {
	outcome Outcome // Rewrapped: needs rewrapping
	kind    string
	reason  string
	err     error
	from    string
	hdr     envelope.Header // envelope objects
	master  string          // SSE-C objects: the key-ring key that opens it
}

// decide says what to do with o, read with the SSE-C master key master.
func (r *runner) decide(o *Object, master string) plan {
	ring := r.cfg.Keyring
	active := ""
	if ring != nil {
		active = ring.Active()
	}
	return decide(o, master, r.provider, r.activeID, active, r.now())
}

// decide is the decision logic: o as read (with the SSE-C master key
// master, if any), the envelope provider kind and active key id (""
// without a provider), the key ring's active key ("" without a key ring).
func decide(o *Object, master, provider, activeID, activeSSEC string, now time.Time) plan {
	v, sealed := o.Metadata[metaName]
	switch {
	case sealed:
		p := plan{kind: KindEnvelope}
		h, err := envelope.Parse(v)
		if err != nil {
			p.outcome, p.err = Failed, err
			p.reason = err.Error()
			return p
		}
		p.hdr, p.from = h, h.KeyID()
		switch {
		case o.SSEC:
			p.outcome, p.err = Failed, errors.New("rewrap: an envelope object stored with SSE-C is not supported")
		case activeID == "":
			p.outcome, p.err = Failed, errors.New("rewrap: envelope object, but no key provider is configured")
		case h.Provider().String() == provider && h.KeyID() == activeID:
			p.outcome = Current
		default:
			p.outcome, p.reason = blocked(o, now)
		}
		if p.err != nil {
			p.reason = p.err.Error()
		}
		return p
	case o.SSEC:
		p := plan{kind: KindSSEC, master: master, from: master}
		switch {
		case activeSSEC == "":
			p.outcome, p.reason = Skipped, ReasonNoKeyring
		case master == "":
			p.outcome, p.reason = Skipped, ReasonForeignSSEC
		case master == activeSSEC:
			p.outcome = Current
		default:
			p.outcome, p.reason = blocked(o, now)
		}
		return p
	}
	return plan{kind: KindOther, outcome: Skipped, reason: ReasonNotSealed}
}

// blocked returns Rewrapped, or Skipped and the reason an object that
// needs rewrapping cannot be rewritten.
func blocked(o *Object, now time.Time) (Outcome, string) {
	switch {
	case o.LegalHold || o.LockMode != "" && o.RetainUntil.After(now):
		return Skipped, ReasonLocked
	case archived(o.Props.StorageClass):
		return Skipped, ReasonArchived
	}
	return Rewrapped, ""
}

func archived(class string) bool {
	switch strings.ToUpper(class) {
	case "GLACIER", "DEEP_ARCHIVE":
		return true
	}
	return false
}

// metaName is the user-metadata name of the envelope header.
const metaName = "s3seal"

// memo is a key provider whose Rewrap remembers its answers, so that
// objects sharing a data key (s3seal reuses data keys across objects) cost
// one rewrap, even when rewrapped at the same time. Wrapped keys are not
// secret; no plaintext key is kept.
type memo struct {
	keys.Provider
	cache *lru.Cache[[32]byte, keys.WrappedKey]

	mu       sync.Mutex // protects inflight
	inflight map[[32]byte]*rewrapCall
}

type rewrapCall struct {
	done chan struct{}
	w    keys.WrappedKey
	err  error
}

func newMemo(p keys.Provider) *memo {
	c, _ := lru.New[[32]byte, keys.WrappedKey](4096)
	return &memo{Provider: p, cache: c, inflight: map[[32]byte]*rewrapCall{}}
}

func cloneWrapped(w keys.WrappedKey) keys.WrappedKey {
	return keys.WrappedKey{KeyID: w.KeyID, Ciphertext: append([]byte(nil), w.Ciphertext...)}
}

// Rewrap rewraps once per distinct wrapped key.
func (m *memo) Rewrap(ctx context.Context, wrapped []byte, keyID string) (keys.WrappedKey, error) {
	return m.once(ctx, m.Name(), wrapped, keyID, func() (keys.WrappedKey, error) {
		return m.Provider.Rewrap(ctx, wrapped, keyID)
	})
}

// For passes keys.Router on, so objects of every kind the provider
// fronts can be read.
func (m *memo) For(kind string) (keys.Provider, bool) {
	if r, ok := m.Provider.(keys.Router); ok {
		return r.For(kind)
	}
	if kind == m.Name() {
		return m.Provider, true
	}
	return nil, false
}

// Move moves once per distinct wrapped key (keys.Mover), for a provider
// that fronts several kinds; otherwise it is Rewrap.
func (m *memo) Move(ctx context.Context, from string, wrapped []byte, keyID string, key *[keys.DataKeySize]byte) (keys.WrappedKey, error) {
	mv, ok := m.Provider.(keys.Mover)
	if !ok {
		if from != m.Name() {
			return keys.WrappedKey{}, fmt.Errorf("rewrap: objects of key provider %s need it configured for reading (read_keys)", from)
		}
		return m.Rewrap(ctx, wrapped, keyID)
	}
	return m.once(ctx, from, wrapped, keyID, func() (keys.WrappedKey, error) {
		return mv.Move(ctx, from, wrapped, keyID, key)
	})
}

// once makes call once per (kind, keyID, wrapped), sharing its answer with
// concurrent and later callers.
func (m *memo) once(ctx context.Context, kind string, wrapped []byte, keyID string, call func() (keys.WrappedKey, error)) (keys.WrappedKey, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s:%d:%s:", len(kind), kind, len(keyID), keyID)
	h.Write(wrapped)
	var k [32]byte
	h.Sum(k[:0])
	if w, ok := m.cache.Get(k); ok {
		return cloneWrapped(w), nil
	}
	m.mu.Lock()
	if w, ok := m.cache.Get(k); ok {
		m.mu.Unlock()
		return cloneWrapped(w), nil
	}
	c, ok := m.inflight[k]
	if !ok {
		c = &rewrapCall{done: make(chan struct{})}
		m.inflight[k] = c
	}
	m.mu.Unlock()
	if ok {
		select {
		case <-c.done:
		case <-ctx.Done():
			return keys.WrappedKey{}, ctx.Err()
		}
		if c.err != nil {
			return keys.WrappedKey{}, c.err
		}
		return cloneWrapped(c.w), nil
	}
	c.w, c.err = call()
	if c.err == nil {
		m.cache.Add(k, cloneWrapped(c.w))
	}
	m.mu.Lock()
	delete(m.inflight, k)
	m.mu.Unlock()
	close(c.done)
	if c.err != nil {
		return keys.WrappedKey{}, c.err
	}
	return cloneWrapped(c.w), nil
}

// userMetadata returns o's metadata without the envelope header.
func userMetadata(o *Object) map[string]string {
	m := maps.Clone(o.Metadata)
	if m == nil {
		m = map[string]string{}
	}
	delete(m, metaName)
	return m
}
