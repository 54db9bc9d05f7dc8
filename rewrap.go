package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"go.uber.org/zap"

	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keyspec"
	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/deploy/rewrap"
)

const rewrapUsage = `Usage: s3seal rewrap --bucket B [--prefix P] [flags]

Moves every object under the bucket (and prefix) to the currently active key,
server-side, without reading the data through s3seal:

  - envelope objects: the data key is rewrapped under the active key (KMS
    ReEncrypt, or the key ring's newest key) and the object's s3seal metadata
    is rewritten by copying the object onto itself; the stored ciphertext never
    changes. Multipart objects are copied part by part, keeping their layout.
  - SSE-C objects written by s3seal: the store re-encrypts them with a copy from
    the old derived key to the one derived from the key ring's newest key.

Objects already under the active key are left alone. Skipped and reported:
objects s3seal did not encrypt, objects under Object Lock (retention or legal
hold) and archived objects. User metadata, content headers, storage class and
tags are kept; ACLs are not (S3 copies never carry them). Every rewritten
object gets a new Last-Modified time (and, in a versioned bucket, a new
version), and may get a new ETag: stores compute ETags from the bytes they
hold, which for envelope objects do not change (MinIO and AWS keep the ETag
unless the bucket also encrypts with SSE-KMS), while SSE-C objects always get
a new one. Clients that cache by ETag or Last-Modified may fetch objects again.
A copy is pinned to the object as it was read: an object that changes
meanwhile is skipped ("changed concurrently, skipped; rerun"), never
overwritten.

Versions: by default only current versions are rewritten. In a versioned
bucket the previous version stays, under the old key, as a noncurrent version,
so the old key cannot be retired until those versions are gone (for example
by a lifecycle rule expiring noncurrent versions). S3 versions cannot be
changed in place; with --all-versions, each key whose history holds a version
under an old key gets that part of its history written again: the versions
(and delete markers) from the oldest one under an old key up are copied,
oldest first, as new versions under the active key, and then the old version
ids are deleted. Contents and order are kept; version ids and Last-Modified
times change, and while a key's history is rewritten its readers may for a
moment see an older version as current. A concurrent write undoes the rewrite
of that key (reported, rerun). Histories holding locked or archived versions
are left alone. --all-versions needs versioning enabled (or never enabled).

Configuration: the same as "s3seal serve" (--config FILE or S3SEAL_CONFIG,
S3SEAL_* and AWS_* variables): the upstream store and credentials, and the
keys (S3SEAL_KEYS, or --keys), listing the active key first (aws-kms) or
last (a key ring) and the old keys for reading. Listener, TLS and client
settings are not used.

Progress: on a terminal a progress bar, otherwise one JSON line per object
that changed, was skipped or failed, and a progress line every 10 seconds.
The summary goes to standard output. Exit status 0 only if nothing failed and
the run went through. With --state, progress is saved so that an interrupted
run continues where it stopped; an interrupt (SIGINT, SIGTERM) lets the
objects in flight finish, saves the state and prints the summary.

Flags:
`

// rewrapCommand runs "s3seal rewrap".
func rewrapCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rewrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, rewrapUsage)
		fs.PrintDefaults()
	}
	file := fs.String("config", "", "YAML configuration file (default $S3SEAL_CONFIG)")
	keySpec := fs.String("keys", "", "key spec, overriding the configuration's (S3SEAL_KEYS)")
	bucket := fs.String("bucket", "", "bucket to rewrap (required)")
	prefix := fs.String("prefix", "", "only keys starting with this prefix")
	allVersions := fs.Bool("all-versions", false, "rewrite the history of versioned keys too (see above)")
	dryRun := fs.Bool("dry-run", false, "report what would change, change nothing")
	rate := fs.String("rate", "", "at most this many objects per second (N, N/s, N/m or N/h; default no limit)")
	state := fs.String("state", "", "state file recording progress, to resume an interrupted run")
	concurrency := fs.Int("concurrency", rewrap.DefaultConcurrency, "objects worked on at once")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "s3seal rewrap: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if *bucket == "" {
		return usageErr("--bucket is required")
	}
	perSecond, err := rewrap.ParseRate(*rate)
	if err != nil {
		return usageErr("--rate: %v", err)
	}
	if *concurrency < 1 || *concurrency > 256 {
		return usageErr("--concurrency must be 1..256")
	}

	cfg, err := loadStoreConfig(*file, *keySpec)
	if err != nil {
		fmt.Fprintf(stderr, "s3seal rewrap: %v\n", err)
		return 1
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "s3seal rewrap: %v\n", err)
		return 1
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	ups, err := newUpstream(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "s3seal rewrap: %v\n", err)
		return 1
	}
	rc := rewrap.Config{
		Store:       rewrap.NewS3Store(ups.s3Client(cfg.Upstream.Region), ups.client),
		Bucket:      *bucket,
		Prefix:      *prefix,
		AllVersions: *allVersions,
		DryRun:      *dryRun,
		Rate:        perSecond,
		Concurrency: *concurrency,
		StatePath:   *state,
		Logger:      log.Named("rewrap"),
	}
	if cfg.Keys != "" {
		kp, err := keyspec.OpenString(ctx, cfg.Keys, keyspec.Options{})
		if err != nil {
			fmt.Fprintf(stderr, "s3seal rewrap: keys (S3SEAL_KEYS): %v\n", err)
			return 1
		}
		if lp, ok := kp.(*local.Provider); ok {
			rc.Keyring = lp.Keyring()
		}
		rc.Keys = keys.NewCache(kp, keys.CacheConfig{})
	} else {
		log.Warn("no keys configured (S3SEAL_KEYS): envelope objects cannot be rewrapped")
	}

	prog := newRewrapProgress(stderr, log, *dryRun)
	rc.OnResult = prog.result
	// After the first interrupt, a second one ends the process at once.
	stopNote := context.AfterFunc(ctx, func() {
		stop()
		prog.note("interrupted: finishing the objects in flight and saving the state (interrupt again to stop at once)")
	})
	prog.start()
	sum, runErr := rewrap.Run(ctx, rc)
	stopNote()
	prog.finish(sum)

	if runErr == nil || sum.Scanned > 0 {
		printRewrapSummary(stdout, *bucket, *prefix, sum, *state)
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "s3seal rewrap: %v\n", runErr)
		return 1
	}
	if !sum.OK() {
		return 1
	}
	return 0
}

// rewrapProgress shows a run's progress: a bar on a terminal, JSON lines
// otherwise.
type rewrapProgress struct {
	log    *zap.Logger
	w      io.Writer
	dryRun bool
	bar    *progressbar.ProgressBar // nil: JSON lines

	mu     sync.Mutex // protects counts, done
	counts rewrap.Counts
	done   chan struct{}
}

func newRewrapProgress(stderr io.Writer, log *zap.Logger, dryRun bool) *rewrapProgress {
	p := &rewrapProgress{log: log, w: stderr, dryRun: dryRun, done: make(chan struct{})}
	if f, ok := stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			desc := "rewrap"
			if dryRun {
				desc = "rewrap (dry run)"
			}
			p.bar = progressbar.NewOptions64(-1,
				progressbar.OptionSetWriter(stderr),
				progressbar.OptionSetDescription(desc),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("objects"),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionSpinnerType(14),
				progressbar.OptionClearOnFinish(),
			)
		}
	}
	return p
}

func (p *rewrapProgress) start() {
	if p.bar != nil {
		return
	}
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.mu.Lock()
				c := p.counts
				p.mu.Unlock()
				p.log.Info("progress", zap.Int64("scanned", c.Scanned), zap.Int64("rewrapped", c.Rewrapped),
					zap.Int64("current", c.Current), zap.Int64("skipped", c.SkippedTotal()), zap.Int64("failed", c.Failed),
					zap.Bool("dry_run", p.dryRun))
			}
		}
	}()
}

// note shows a message.
func (p *rewrapProgress) note(msg string) {
	if p.bar != nil {
		_ = p.bar.Clear()
		fmt.Fprintln(p.w, msg)
		return
	}
	p.log.Warn(msg)
}

// result records one object's outcome.
func (p *rewrapProgress) result(r rewrap.Result) {
	p.mu.Lock()
	p.counts.Scanned++
	switch r.Outcome {
	case rewrap.Rewrapped:
		p.counts.Rewrapped++
	case rewrap.Current:
		p.counts.Current++
	case rewrap.Skipped:
		if p.counts.Skipped == nil {
			p.counts.Skipped = map[string]int64{}
		}
		p.counts.Skipped[r.Reason]++
	default:
		p.counts.Failed++
	}
	p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Add(1)
		switch r.Outcome {
		case rewrap.Skipped, rewrap.Failed:
			_ = p.bar.Clear()
			fmt.Fprintf(p.w, "%s %s%s: %s\n", r.Outcome, r.Key, versionSuffix(r.VersionID), r.Reason)
		}
		return
	}
	fields := []zap.Field{zap.String("key", r.Key), zap.String("outcome", r.Outcome.String())}
	if r.VersionID != "" {
		fields = append(fields, zap.String("version_id", r.VersionID))
	}
	if r.Kind != "" {
		fields = append(fields, zap.String("kind", r.Kind))
	}
	if r.From != "" {
		fields = append(fields, zap.String("from", r.From))
	}
	if r.To != "" {
		fields = append(fields, zap.String("to", r.To))
	}
	if r.NewVersionID != "" {
		fields = append(fields, zap.String("new_version_id", r.NewVersionID))
	}
	if r.DryRun {
		fields = append(fields, zap.Bool("dry_run", true))
	}
	switch r.Outcome {
	case rewrap.Current:
		p.log.Debug("object", fields...)
	case rewrap.Rewrapped:
		p.log.Info("object", fields...)
	case rewrap.Skipped:
		p.log.Info("object", append(fields, zap.String("reason", r.Reason))...)
	default:
		p.log.Warn("object", append(fields, zap.String("reason", r.Reason))...)
	}
}

func versionSuffix(v string) string {
	if v == "" {
		return ""
	}
	return " (version " + v + ")"
}

// finish stops the progress display and logs the summary.
func (p *rewrapProgress) finish(s rewrap.Summary) {
	close(p.done)
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	p.log.Info("summary",
		zap.Bool("dry_run", s.DryRun),
		zap.Int64("scanned", s.Scanned), zap.Int64("rewrapped", s.Rewrapped), zap.Int64("current", s.Current),
		zap.Int64("skipped", s.SkippedTotal()), zap.Any("skipped_by_reason", s.Skipped), zap.Int64("failed", s.Failed),
		zap.Bool("interrupted", s.Interrupted), zap.String("resumed_after", s.ResumedAfter), zap.String("done_through", s.After),
		zap.Int64("total_scanned", s.Totals.Scanned), zap.Int64("total_rewrapped", s.Totals.Rewrapped))
}

// printRewrapSummary writes the final summary for people.
func printRewrapSummary(w io.Writer, bucket, prefix string, s rewrap.Summary, state string) {
	title := "s3seal rewrap s3://" + bucket + "/" + prefix
	if s.DryRun {
		title += " (dry run: nothing was changed)"
	}
	fmt.Fprintln(w, title)
	if s.ResumedAfter != "" {
		fmt.Fprintf(w, "  resumed after    %s\n", s.ResumedAfter)
	}
	if s.CurrentOnly {
		fmt.Fprintln(w, "  the bucket never had versioning: only current versions exist")
	}
	rewrapped := "rewrapped"
	if s.DryRun {
		rewrapped = "to rewrap"
	}
	fmt.Fprintf(w, "  scanned          %d\n", s.Scanned)
	fmt.Fprintf(w, "  %-16s %d\n", rewrapped, s.Rewrapped)
	fmt.Fprintf(w, "  already current  %d\n", s.Current)
	fmt.Fprintf(w, "  skipped          %d\n", s.SkippedTotal())
	reasons := make([]string, 0, len(s.Skipped))
	for r := range s.Skipped {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(w, "    %-6d %s\n", s.Skipped[r], r)
	}
	fmt.Fprintf(w, "  failed           %d\n", s.Failed)
	if s.Totals.Scanned != s.Scanned {
		fmt.Fprintf(w, "  all runs of this pass: scanned %d, rewrapped %d, current %d, skipped %d, failed %d\n",
			s.Totals.Scanned, s.Totals.Rewrapped, s.Totals.Current, s.Totals.SkippedTotal(), s.Totals.Failed)
	}
	switch {
	case s.Interrupted && state != "":
		fmt.Fprintf(w, "  interrupted; done through %q: rerun with --state %s to continue\n", s.After, state)
	case s.Interrupted:
		fmt.Fprintln(w, "  interrupted; rerun (with --state FILE to continue where a run stops)")
	case s.Failed > 0 || s.Skipped[rewrap.ReasonConcurrent] > 0:
		fmt.Fprintln(w, "  rerun to retry what failed or changed concurrently")
	}
	if !s.DryRun && s.Rewrapped > 0 {
		fmt.Fprintln(w, "  note: rewritten objects have new Last-Modified times (and SSE-C objects new ETags)")
	}
}
