package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/integration/testbed"
)

// The client matrix: real S3 tools (restic, rclone, mc, the Docker
// registry, boto3, AWS CLI v1, barman's cloud tools) against s3seal in
// front of MinIO and versitygw, in passthrough, envelope and the
// server-side modes the store supports. One table drives tool × store ×
// mode; each cell is a subtest named tool/store/mode, runs the tool's real
// workflow, checks its exit codes and effects, and under envelope rules
// reads the store directly to check it holds only ciphertext.
//
// -short trims volumes (files, keys) but runs every cell.

// matrixCell is one tool × store × mode run.
type matrixCell struct {
	tool   string
	store  *testbed.S3Server
	mode   string
	p      *proxy
	ring   string // key ring file of s3seal ("" in passthrough)
	bucket string
	// marker is a string every plaintext file of the cell holds; the
	// store must never show it under envelope rules.
	marker string
}

// matrixTool is one row of the matrix.
type matrixTool struct {
	name string
	// cells lists "store/mode" names the tool runs in.
	cells []string
	// need lists programs that must be installed (install.sh installs
	// them); a missing one fails the cell.
	need []string
	run  func(t *testing.T, c *matrixCell)
}

// Store × mode sets of the matrix. SSE-S3 and SSE-KMS need MinIO's KMS,
// SSE-C needs MinIO over TLS; versitygw stores SSE headers without
// encrypting, so it runs passthrough and envelope only.
var (
	cellsBasic = []string{"minio/passthrough", "minio/envelope", "versitygw/passthrough", "versitygw/envelope"}
	cellsSSE   = append(cellsBasic[:len(cellsBasic):len(cellsBasic)], "minio/sse-c")
	cellsAll   = append(cellsSSE[:len(cellsSSE):len(cellsSSE)], "minio/sse-s3", "minio/sse-kms")
)

func matrixTools() []matrixTool {
	return []matrixTool{
		{name: "restic", cells: cellsAll, need: []string{"restic"}, run: runRestic},
		{name: "rclone", cells: cellsAll, need: []string{"rclone"}, run: runRclone},
		{name: "mc", cells: cellsSSE, run: runMC},
		{name: "registry", cells: cellsSSE, run: runRegistry},
		{name: "boto3", cells: cellsSSE, need: []string{"/usr/bin/python3"}, run: runBoto3},
		{name: "awscli-v1", cells: cellsBasic, need: []string{"aws"}, run: runAWSCLIPresign},
		{name: "s3cmd-v2", cells: cellsBasic, need: []string{"s3cmd"}, run: runS3cmdV2},
		{name: "barman", cells: []string{"minio/envelope", "minio/sse-c", "versitygw/envelope"},
			need: []string{"barman-cloud-backup", "barman-cloud-restore", "barman-cloud-wal-archive", "barman-cloud-wal-restore", "barman-cloud-backup-list"},
			run:  runBarman},
	}
}

// TestClientMatrix runs every tool in every cell of its row.
func TestClientMatrix(t *testing.T) {
	testbed.Require(t)
	tools := matrixTools()
	// One s3seal per store/mode pair, started here (concurrent cells must
	// not start processes on the parent test) and shared by the cells.
	proxies := map[string]*matrixCell{}
	for _, tool := range tools {
		for _, name := range tool.cells {
			if _, ok := proxies[name]; ok {
				continue
			}
			storeName, mode, _ := strings.Cut(name, "/")
			up := shared.minio
			if storeName == "versitygw" {
				up = shared.vgw
			}
			c := &matrixCell{store: up, mode: mode}
			c.p, c.ring = startModeProxy(t, up, mode)
			proxies[name] = c
		}
	}
	// Cells run matrixJobs at a time, the slowest (a failing tool spends
	// most of its time in its own retry back-off) first. Concurrent t.Run
	// calls are not bound by -parallel.
	type job struct {
		tool matrixTool
		name string
	}
	var jobs []job
	for _, tool := range tools {
		for _, name := range tool.cells {
			jobs = append(jobs, job{tool, name})
		}
	}
	slow := func(j job) int {
		switch {
		case j.tool.name == "restic" && strings.HasPrefix(j.name, "minio/") && j.name != "minio/passthrough":
			return 2
		case j.tool.name == "barman" || j.tool.name == "rclone":
			return 1
		}
		return 0
	}
	sort.SliceStable(jobs, func(a, b int) bool { return slow(jobs[a]) > slow(jobs[b]) })
	sem := make(chan struct{}, matrixJobs)
	var wg sync.WaitGroup
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			t.Run(j.tool.name+"/"+j.name, func(t *testing.T) { runCell(t, j.tool, proxies[j.name]) })
		}()
	}
	wg.Wait()
}

// matrixJobs is how many cells run at once.
const matrixJobs = 4

// runCell runs one tool in one store/mode cell.
func runCell(t *testing.T, tool matrixTool, base *matrixCell) {
	for _, prog := range tool.need {
		if _, err := exec.LookPath(prog); err != nil {
			t.Fatalf("%s is not installed (integration/testbed/install.sh clients installs it): %v", prog, err)
		}
	}
	c := *base
	c.tool = tool.name
	c.bucket = cellBucket(t, c.store, c.mode)
	c.marker = "s3seal-plaintext-marker-" + randHex(8)
	start := time.Now()
	tool.run(t, &c)
	checkStoreSealed(t, &c)
	if t.Failed() {
		t.Logf("last lines of s3seal's log (shared by the cells running now):\n%s", tailString(c.p.Log(), 3000))
	}
	t.Logf("cell took %v", time.Since(start).Round(100*time.Millisecond))
}

// cellBucket creates a bucket for one cell directly on the store.
func cellBucket(t *testing.T, up *testbed.S3Server, mode string) string {
	name := "m-" + strings.ReplaceAll(mode, "-", "") + "-" + randHex(5)
	up.CreateBucket(t, name)
	return name
}

// startModeProxy runs s3seal in front of up with every bucket in mode.
func startModeProxy(t *testing.T, up *testbed.S3Server, mode string) (*proxy, string) {
	t.Helper()
	if mode == "passthrough" {
		return startProxy(t, up, proxyOptions{Env: map[string]string{"S3SEAL_MODE": "passthrough"}}), ""
	}
	ring, _ := sseKeyring(t)
	yaml := fmt.Sprintf("mode: %s\nkeys: local:%s\n", mode, ring)
	if mode == "sse-kms" {
		yaml = fmt.Sprintf("mode: passthrough\nkeys: local:%s\npolicies:\n  - name: all\n    bucket: \"*\"\n    mode: sse-kms\n    kms_key_id: %s\n", ring, minioKMSKey)
	}
	return startProxy(t, up, proxyOptions{Env: sseConfig(t, yaml, nil)}), ring
}

// checkStoreSealed reads the cell's bucket directly on the store, as its
// owner, and checks that every object is stored as the mode demands: under
// envelope rules each carries x-amz-meta-s3seal and no object's bytes hold
// the cell's plaintext marker; under sse-s3/sse-kms each is encrypted by
// the store; under sse-c none can be read without the key.
func checkStoreSealed(t *testing.T, c *matrixCell) {
	t.Helper()
	if c.mode == "passthrough" {
		return
	}
	direct := c.store.Client(t)
	var keys []string
	for _, o := range storeList(t, c, "") {
		// s3seal's own objects (format markers, FORMAT.md 9.4) hold no
		// client data.
		if k := aws.ToString(o.Key); c.mode != "envelope" || !strings.HasPrefix(k, ".s3seal/") {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		t.Errorf("store check: bucket %s is empty on the store", c.bucket)
		return
	}
	var mu sync.Mutex
	var bad []string
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(bad) < 10 {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range work {
				checkStoredObject(t, c, direct, key, fail)
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	for _, b := range bad {
		t.Errorf("store check (%d objects): %s", len(keys), b)
	}
}

func checkStoredObject(t *testing.T, c *matrixCell, direct *s3.Client, key string, fail func(string, ...any)) {
	in := &s3.HeadObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)}
	h, err := direct.HeadObject(ctx(t), in)
	switch c.mode {
	case "sse-c":
		if err == nil {
			fail("%s: the store serves it without the SSE-C key (SSE-C algorithm %q)", key, aws.ToString(h.SSECustomerAlgorithm))
		}
		return
	case "sse-s3", "sse-kms":
		if err != nil {
			fail("%s: direct HEAD: %v", key, err)
			return
		}
		want := types.ServerSideEncryptionAes256
		if c.mode == "sse-kms" {
			want = types.ServerSideEncryptionAwsKms
		}
		if h.ServerSideEncryption != want {
			fail("%s: stored with server-side encryption %q, want %q", key, h.ServerSideEncryption, want)
		}
		return
	}
	if err != nil {
		fail("%s: direct HEAD: %v", key, err)
		return
	}
	if _, ok := h.Metadata["s3seal"]; !ok {
		fail("%s: no x-amz-meta-s3seal on the store (metadata %v): stored as plaintext?", key, h.Metadata)
	}
	out, err := direct.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(key)})
	if err != nil {
		fail("%s: direct GET: %v", key, err)
		return
	}
	defer out.Body.Close()
	if found, err := containsMarker(out.Body, c.marker); err != nil {
		fail("%s: direct GET body: %v", key, err)
	} else if found {
		fail("%s: the store holds the plaintext marker", key)
	}
}

// containsMarker streams r and reports whether it contains marker.
func containsMarker(r io.Reader, marker string) (bool, error) {
	m := []byte(marker)
	buf := make([]byte, 256<<10)
	carry := 0
	for {
		n, err := r.Read(buf[carry:])
		if bytes.Contains(buf[:carry+n], m) {
			return true, nil
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		// Keep the tail that could start a marker split across reads.
		keep := min(len(m)-1, carry+n)
		copy(buf, buf[carry+n-keep:carry+n])
		carry = keep
	}
}

// treeSpec describes a directory of test files.
type treeSpec struct {
	small    int   // files of 0..4 KiB with the marker
	medium   int   // files of 64 KiB..1 MiB
	large    []int // sizes of large files
	nestedIn int   // spread over this many sub-directories
}

// makeTree writes files under dir: each holds the marker, text files
// are compressible, the rest random. It returns the relative names.
func makeTree(t *testing.T, dir, marker string, s treeSpec, seed uint64) []string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	var names []string
	write := func(name string, size int) {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		if size >= len(marker) {
			copy(b, marker)
			if size > 2*len(marker)+10 {
				copy(b[size/2:], marker)
			}
		}
		p := filepath.Join(dir, name)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755), "mkdir")
		must(t, os.WriteFile(p, b, 0o644), "write ", name)
		// Whole seconds in the past: stores with one-second timestamps
		// (versitygw) must not look older than the file (mc diff).
		past := time.Now().Add(-5 * time.Second).Truncate(time.Second)
		must(t, os.Chtimes(p, past, past), "chtimes ", name)
		names = append(names, name)
	}
	sub := max(s.nestedIn, 1)
	for i := range s.small {
		size := rng.IntN(4097)
		if i == 0 {
			size = 0
		}
		write(fmt.Sprintf("d%02d/small-%05d.txt", i%sub, i), size)
	}
	for i := range s.medium {
		write(fmt.Sprintf("d%02d/medium-%03d.bin", i%sub, i), 64<<10+rng.IntN(1<<20-64<<10))
	}
	for i, n := range s.large {
		write(fmt.Sprintf("large-%d.bin", i), n)
	}
	sort.Strings(names)
	return names
}

// sameTree reports the first difference between two directories' files.
func sameTree(t *testing.T, want, got string, names []string) {
	t.Helper()
	diffs := 0
	for _, n := range names {
		a, err := os.ReadFile(filepath.Join(want, n))
		must(t, err, "read ", n)
		b, err := os.ReadFile(filepath.Join(got, n))
		if err != nil || !bytes.Equal(a, b) {
			if diffs++; diffs <= 5 {
				t.Errorf("%s: restored copy differs (err %v, %d vs %d bytes)", n, err, len(b), len(a))
			}
		}
	}
	if diffs > 5 {
		t.Errorf("... %d files differ in all", diffs)
	}
}

// toolResult is a finished tool run.
type toolResult struct {
	out  string
	err  error
	code int
}

func (r toolResult) String() string {
	out := r.out
	if len(out) > 4000 {
		out = out[:1500] + "\n…\n" + out[len(out)-2500:]
	}
	return fmt.Sprintf("exit %d (%v)\n%s", r.code, r.err, out)
}

// runTool runs a program with env (the whole environment) and returns its
// combined output and exit code; it never fails the test by itself.
func runTool(t *testing.T, env []string, dir string, timeout time.Duration, name string, args ...string) toolResult {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(c, name, args...)
	cmd.Env = env
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	if c.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	return toolResult{out: out.String(), err: err, code: code}
}

// step runs a tool and fails the test (not the cell's other checks) when
// it exits non-zero.
func step(t *testing.T, env []string, what string, timeout time.Duration, name string, args ...string) (toolResult, bool) {
	t.Helper()
	r := runTool(t, env, "", timeout, name, args...)
	if r.code != 0 {
		t.Errorf("%s: %s %s: %s", what, name, strings.Join(args, " "), r)
		return r, false
	}
	return r, true
}

// baseEnv is a clean environment for tools: PATH, a private HOME, no
// AWS_CA_BUNDLE (rclone and some SDKs refuse it) and no proxy settings.
func baseEnv(t *testing.T) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LANG=C.UTF-8", "TZ=UTC"}
}

// vol picks a volume by -short.
func vol(full, short int) int {
	if testing.Short() {
		return short
	}
	return full
}

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}
