package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/crypto/envelope"
	"github.com/s3seal/s3seal/crypto/keys"
	"github.com/s3seal/s3seal/crypto/keys/keyspec"
	"github.com/s3seal/s3seal/crypto/keys/local"
	"github.com/s3seal/s3seal/deploy/rewrap"
	"github.com/s3seal/s3seal/integration/testbed"
)

// rewrapRun is one "s3seal rewrap" process: exit code, stdout, and its
// JSON log lines.
type rewrapRun struct {
	code    int
	stdout  string
	lines   []map[string]any
	summary map[string]any
}

func (r *rewrapRun) num(field string) int {
	v, _ := r.summary[field].(float64)
	return int(v)
}

func (r *rewrapRun) String() string {
	b, _ := json.Marshal(r.summary)
	return fmt.Sprintf("exit %d, summary %s\n%s", r.code, b, r.stdout)
}

// rewrapEnv is the environment of s3seal rewrap against up with keys.
func rewrapEnv(t testing.TB, up *testbed.S3Server, keys string, extra ...string) []string {
	home := t.TempDir()
	env := []string{
		"AWS_ENDPOINT_URL_S3=" + up.Endpoint,
		"AWS_REGION=" + up.Region,
		"AWS_ACCESS_KEY_ID=" + up.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + up.SecretKey,
		"AWS_CA_BUNDLE=" + up.CAFile,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"S3SEAL_KEYS=" + keys,
	}
	return append(env, extra...)
}

// runRewrap runs s3seal rewrap. If interruptAfter > 0, it sends SIGINT
// once that many objects have been rewrapped.
func runRewrap(t testing.TB, env []string, interruptAfter int, args ...string) *rewrapRun {
	t.Helper()
	return runRewrapBin(t, shared.bin, env, interruptAfter, args...)
}

// runRewrapBin is runRewrap with another s3seal binary.
func runRewrapBin(t testing.TB, bin string, env []string, interruptAfter int, args ...string) *rewrapRun {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(c, bin, append([]string{"rewrap"}, args...)...)
	cmd.Env = env
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	pipe, err := cmd.StderrPipe()
	must(t, err, "stderr pipe")
	must(t, cmd.Start(), "start s3seal rewrap")
	run := &rewrapRun{}
	var raw strings.Builder
	rewrapped := 0
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		raw.WriteString(line + "\n")
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		run.lines = append(run.lines, m)
		if m["msg"] == "summary" {
			run.summary = m
		}
		if m["msg"] == "object" && m["outcome"] == "rewrapped" {
			if rewrapped++; rewrapped == interruptAfter {
				_ = cmd.Process.Signal(syscall.SIGINT)
			}
		}
	}
	err = cmd.Wait()
	run.code = cmd.ProcessState.ExitCode()
	run.stdout = stdout.String()
	if run.summary == nil {
		t.Fatalf("s3seal rewrap %s: no summary (%v)\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, run.stdout, raw.String())
	}
	t.Logf("s3seal rewrap %s: %s", strings.Join(args, " "), run)
	return run
}

// storedObject is what the store holds for an object.
type storedObject struct {
	body  []byte
	meta  map[string]string
	etag  string
	ctype string
	parts int
	mtime time.Time
}

func readStored(t testing.TB, up *testbed.S3Server, bucket, key, versionID string) storedObject {
	t.Helper()
	c := up.Client(t)
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	out, err := c.GetObject(ctx(t), in)
	must(t, err, "direct GetObject ", key)
	body, err := io.ReadAll(out.Body)
	out.Body.Close()
	must(t, err, "read ", key)
	h, err := c.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: in.VersionId, PartNumber: aws.Int32(1)})
	must(t, err, "direct HeadObject part 1 ", key)
	return storedObject{body: body, meta: out.Metadata, etag: aws.ToString(out.ETag), ctype: aws.ToString(out.ContentType), parts: int(aws.ToInt32(h.PartsCount)),
		mtime: aws.ToTime(out.LastModified)}
}

func storedHeader(t testing.TB, o storedObject) envelope.Header {
	t.Helper()
	h, err := envelope.Parse(o.meta["s3seal"])
	must(t, err, "parse stored s3seal metadata")
	return h
}

// putMultipart uploads body through c in parts of partSize.
func putMultipart(t testing.TB, c *s3.Client, bucket, key string, body []byte, partSize int) {
	t.Helper()
	cu, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), ContentType: aws.String("application/x-parts")})
	must(t, err, "CreateMultipartUpload ", key)
	var parts []types.CompletedPart
	for n, off := int32(1), 0; off < len(body); n, off = n+1, off+partSize {
		end := min(off+partSize, len(body))
		up, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cu.UploadId, PartNumber: aws.Int32(n), Body: bytes.NewReader(body[off:end])})
		must(t, err, "UploadPart ", key)
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: up.ETag})
	}
	_, err = c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: cu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	must(t, err, "CompleteMultipartUpload ", key)
}

// TestRewrapKMS writes objects through s3seal under KMS key K1, then more
// under K2, and rewraps them all to K3: dry run, an interrupted run, its
// resumption, and what the store and readers see afterwards.
func TestRewrapKMS(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	kms := testbed.StartLocalKMS(t)
	k1, _ := kms.CreateKey(t)
	k2, _ := kms.CreateKey(t)
	k3, arn3 := kms.CreateKey(t)
	bucket := newBucket(t, up)
	kmsEnv := func(spec string) map[string]string {
		return map[string]string{"S3SEAL_MODE": "envelope", "S3SEAL_KEYS": "aws-kms:" + spec, "AWS_ENDPOINT_URL_KMS": kms.Endpoint, "S3SEAL_LOG_LEVEL": "warn"}
	}

	plain := map[string][]byte{}
	write := func(p *proxy, prefix string, sizes []int, mp []int) {
		c := p.Client(t)
		for i, n := range sizes {
			key := fmt.Sprintf("%ssmall-%d", prefix, i)
			plain[key] = randBytes(n)
			_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(plain[key]),
				ContentType: aws.String("text/x-rewrap"), Metadata: map[string]string{"owner": "rewrap-test"}, Tagging: aws.String("team=blue")})
			must(t, err, "PutObject ", key)
		}
		for i, n := range mp {
			key := fmt.Sprintf("%smultipart-%d", prefix, i)
			plain[key] = randBytes(n)
			putMultipart(t, c, bucket, key, plain[key], 5<<20)
		}
	}
	p1 := startProxy(t, up, proxyOptions{Env: kmsEnv(k1)})
	write(p1, "a/", []int{0, 1, 65537, 200_000}, []int{5<<20 + 100_000})
	p1.Stop(t)
	p2 := startProxy(t, up, proxyOptions{Env: kmsEnv(k2 + "," + k1)})
	write(p2, "b/", []int{10, 65536, 131072, 3000, 70_000, 1}, []int{10<<20 + 1000})
	n := len(plain)

	before := map[string]storedObject{}
	keyIDs := map[string]bool{}
	for key := range plain {
		before[key] = readStored(t, up, bucket, key, "")
		keyIDs[storedHeader(t, before[key]).KeyID()] = true
	}
	if len(keyIDs) != 2 {
		t.Fatalf("objects written under %d KMS keys, want 2", len(keyIDs))
	}
	// Last-Modified has a resolution of one second: let one pass so that a
	// rewrite shows in it.
	time.Sleep(time.Until(latestMtime(before).Add(1100 * time.Millisecond)))
	if before["a/multipart-0"].parts != 2 || before["b/multipart-0"].parts != 3 {
		t.Fatalf("stored part counts %d and %d", before["a/multipart-0"].parts, before["b/multipart-0"].parts)
	}

	env := rewrapEnv(t, up, "aws-kms:"+k3+","+k1+","+k2, "AWS_ENDPOINT_URL_KMS="+kms.Endpoint)
	t.Run("dry-run", func(t *testing.T) {
		r := runRewrap(t, env, 0, "--bucket", bucket, "--dry-run")
		if r.code != 0 || r.num("scanned") != n || r.num("rewrapped") != n || r.summary["dry_run"] != true || !strings.Contains(r.stdout, "to rewrap") {
			t.Errorf("dry run: %s", r)
		}
		for key, b := range before {
			if now := readStored(t, up, bucket, key, ""); now.etag != b.etag || now.meta["s3seal"] != b.meta["s3seal"] {
				t.Errorf("%s changed in a dry run", key)
			}
		}
	})

	state := filepath.Join(t.TempDir(), "rewrap.state")
	first := runRewrap(t, env, 3, "--bucket", bucket, "--state", state, "--rate", "4/s", "--concurrency", "2")
	if first.code == 0 || first.summary["interrupted"] != true || first.num("rewrapped") < 3 || first.num("rewrapped") >= n {
		t.Fatalf("interrupted run: %s", first)
	}
	second := runRewrap(t, env, 0, "--bucket", bucket, "--state", state)
	if second.code != 0 || second.summary["interrupted"] != false || second.summary["resumed_after"] == "" {
		t.Fatalf("resumed run: %s", second)
	}
	// The second run continues where the first stopped: nothing is looked
	// at twice, and together they rewrapped everything once.
	if second.num("scanned") != n-first.num("scanned") || first.num("rewrapped")+second.num("rewrapped") != n || second.num("total_rewrapped") != n {
		t.Errorf("first %s\nsecond %s", first, second)
	}

	for key, b := range before {
		now := readStored(t, up, bucket, key, "")
		if !bytes.Equal(now.body, b.body) {
			t.Errorf("%s: stored ciphertext changed", key)
		}
		h := storedHeader(t, now)
		if h.KeyID() != arn3 {
			t.Errorf("%s: header names %s, want K3 %s", key, h.KeyID(), arn3)
		}
		if !bytes.Equal(h.Commitment(), storedHeader(t, b).Commitment()) {
			t.Errorf("%s: object key changed", key)
		}
		if now.parts != b.parts || now.ctype != b.ctype || len(now.meta) != len(b.meta) || now.meta["owner"] != b.meta["owner"] {
			t.Errorf("%s: parts %d→%d, type %q→%q, metadata %v→%v", key, b.parts, now.parts, b.ctype, now.ctype, b.meta, now.meta)
		}
		// The store's ETag is computed from the unchanged ciphertext (and
		// part layout), so it may stay; Last-Modified moves.
		if !now.mtime.After(b.mtime) {
			t.Errorf("%s: Last-Modified %v, was %v", key, now.mtime, b.mtime)
		}
		if strings.Contains(key, "small") {
			tags, err := up.Client(t).GetObjectTagging(ctx(t), &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			must(t, err, "GetObjectTagging")
			if len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Value) != "blue" {
				t.Errorf("%s: tags %v", key, tags.TagSet)
			}
		}
	}
	// Readers: s3seal with K3 active and the old keys allowed, and s3seal
	// with K3 alone (the old keys are no longer needed).
	for _, spec := range []string{k3 + "," + k1 + "," + k2, k3} {
		p := startProxy(t, up, proxyOptions{Env: kmsEnv(spec)})
		c := p.Client(t)
		for key, want := range plain {
			if got := getBytes(t, c, bucket, key); !bytes.Equal(got, want) {
				t.Errorf("%s via s3seal with aws-kms:%s: %d bytes, want %d", key, spec, len(got), len(want))
			}
		}
		p.Stop(t)
	}
	again := runRewrap(t, env, 0, "--bucket", bucket)
	if again.code != 0 || again.num("current") != n || again.num("rewrapped") != 0 {
		t.Errorf("third run: %s", again)
	}

	t.Run("concurrent-change", func(t *testing.T) {
		// Objects under K2 whose store copy is raced by a client write
		// through s3seal: the write wins, the rewrap skips them.
		c := p2.Client(t)
		for _, key := range []string{"race/obj", "race/other"} {
			_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("before " + key)})
			must(t, err, "PutObject")
		}
		putMultipart(t, c, bucket, "race/mp", randBytes(5<<20+10), 5<<20)
		raced := map[string]string{"race/mp": "Complete", "race/obj": "Copy"}
		var mu sync.Mutex
		store := &racingStore{Store: rewrap.NewS3Store(up.Client(t), nil), race: func(op, key string) {
			mu.Lock()
			defer mu.Unlock()
			if raced[key] != op {
				return
			}
			delete(raced, key)
			_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("concurrent " + key)})
			must(t, err, "concurrent PutObject")
		}}
		kp, err := keyspec.OpenString(ctx(t), "aws-kms:"+k3+","+k2+","+k1, keyspec.Options{KMSClient: kms.Client(t)})
		must(t, err, "open KMS keys")
		sum, err := rewrap.Run(ctx(t), rewrap.Config{Store: store, Bucket: bucket, Prefix: "race/", Keys: keys.NewCache(kp, keys.CacheConfig{}), Concurrency: 1})
		must(t, err, "rewrap.Run")
		if len(raced) != 0 || sum.Skipped[rewrap.ReasonConcurrent] != 2 || sum.Rewrapped != 1 || sum.Failed != 0 {
			t.Fatalf("summary %+v, races left %v", sum, raced)
		}
		for _, key := range []string{"race/obj", "race/mp"} {
			if got := string(getBytes(t, c, bucket, key)); got != "concurrent "+key {
				t.Errorf("%s: %q after the rewrap, want the concurrent write", key, got)
			}
			if h := storedHeader(t, readStored(t, up, bucket, key, "")); h.KeyID() == arn3 {
				t.Errorf("%s: the concurrent write was rewrapped over", key)
			}
		}
		if h := storedHeader(t, readStored(t, up, bucket, "race/other", "")); h.KeyID() != arn3 {
			t.Errorf("race/other not rewrapped: %s", h.KeyID())
		}
	})
}

// racingStore calls race before each Copy and Complete.
type racingStore struct {
	rewrap.Store
	race func(op, key string)
}

func (s *racingStore) Copy(ctx context.Context, in rewrap.CopyInput) (rewrap.Written, error) {
	s.race("Copy", in.Dst.Key)
	return s.Store.Copy(ctx, in)
}

func (s *racingStore) Complete(ctx context.Context, in rewrap.CompleteInput) (rewrap.Written, error) {
	s.race("Complete", in.Key)
	return s.Store.Complete(ctx, in)
}

// ssecKey returns the SSE-C key s3seal derives for bucket/key under the
// named master key of the key ring file.
func ssecKey(t testing.TB, ringPath, master, bucket, key string) (b64, b64md5 string) {
	t.Helper()
	ring, err := local.Load(ringPath)
	must(t, err, "load key ring")
	k, err := ring.DeriveSSECKey(master, bucket, key)
	must(t, err, "derive SSE-C key")
	sum := md5.Sum(k[:])
	return base64.StdEncoding.EncodeToString(k[:]), base64.StdEncoding.EncodeToString(sum[:])
}

// TestRewrapKeyring rotates a local key ring (s3seal keygen --append) and
// rewraps a versioned bucket with --all-versions: envelope versions, a
// delete marker, a multipart object, an SSE-C object and a plaintext one.
func TestRewrapKeyring(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	p, ring := startEnvelopeProxy(t, up, map[string]string{"S3SEAL_LOG_LEVEL": "warn"})
	c := p.Client(t)
	direct := up.Client(t)
	bucket := newBucket(t, up)
	_, err := direct.PutBucketVersioning(ctx(t), &s3.PutBucketVersioningInput{Bucket: aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
	must(t, err, "PutBucketVersioning")
	r0, err := local.Load(ring)
	must(t, err, "load key ring")
	oldName := r0.Active()

	// e/one: three versions and a delete marker between the second and
	// the third.
	var history [][]byte
	for i := range 3 {
		if i == 2 {
			_, err := c.DeleteObject(ctx(t), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("e/one")})
			must(t, err, "DeleteObject")
		}
		body := randBytes(1000 + i)
		history = append(history, body)
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("e/one"), Body: bytes.NewReader(body)})
		must(t, err, "PutObject")
	}
	mpBody := randBytes(5<<20 + 300)
	putMultipart(t, c, bucket, "e/mp", mpBody, 5<<20)
	// An SSE-C object as s3seal's sse-c mode stores it, and one s3seal did
	// not encrypt.
	ssecBody := []byte("sse-c content")
	k, km := ssecKey(t, ring, oldName, bucket, "c/ssec")
	_, err = direct.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("c/ssec"), Body: bytes.NewReader(ssecBody),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(k), SSECustomerKeyMD5: aws.String(km), Metadata: map[string]string{"m": "1"}})
	must(t, err, "PutObject SSE-C")
	_, err = direct.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("plain"), Body: strings.NewReader("plain")})
	must(t, err, "PutObject plain")

	// A bucket with Object Lock: a held object is skipped, not rewritten.
	lockBucket := "t-" + randHex(6)
	_, err = direct.CreateBucket(ctx(t), &s3.CreateBucketInput{Bucket: aws.String(lockBucket), ObjectLockEnabledForBucket: aws.Bool(true)})
	must(t, err, "CreateBucket with Object Lock")
	for _, key := range []string{"held", "free"} {
		_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(lockBucket), Key: aws.String(key), Body: strings.NewReader(key)})
		must(t, err, "PutObject ", key)
	}
	_, err = direct.PutObjectLegalHold(ctx(t), &s3.PutObjectLegalHoldInput{Bucket: aws.String(lockBucket), Key: aws.String("held"),
		LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOn}})
	must(t, err, "PutObjectLegalHold")
	heldBefore := readStored(t, up, lockBucket, "held", "")

	listVersions := func() (versions []types.ObjectVersion, markers int) {
		out, err := direct.ListObjectVersions(ctx(t), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("e/one")})
		must(t, err, "ListObjectVersions")
		return out.Versions, len(out.DeleteMarkers)
	}
	oldVersions, _ := listVersions()
	var oldBodies [][]byte // newest first, as listed
	for _, v := range oldVersions {
		oldBodies = append(oldBodies, readStored(t, up, bucket, "e/one", aws.ToString(v.VersionId)).body)
	}
	mpBefore := readStored(t, up, bucket, "e/mp", "")

	out, err := exec.Command(shared.bin, "keygen", "--append", ring).CombinedOutput()
	must(t, err, "s3seal keygen --append: ", string(out))
	r1, err := local.Load(ring)
	must(t, err, "load key ring")
	newName := r1.Active()
	if newName == oldName || strings.TrimSpace(string(out)) != newName {
		t.Fatalf("keygen --append: %q, active %s", out, newName)
	}

	env := rewrapEnv(t, up, "local:"+ring)
	r := runRewrap(t, env, 0, "--bucket", bucket, "--all-versions")
	// Versions: 3 of e/one, e/mp, c/ssec, plain.
	if r.code != 0 || r.num("scanned") != 6 || r.num("rewrapped") != 5 || r.num("skipped") != 1 || r.num("failed") != 0 {
		t.Fatalf("rewrap: %s", r)
	}

	lr := runRewrap(t, env, 0, "--bucket", lockBucket)
	if lr.code != 0 || lr.num("rewrapped") != 1 || lr.num("skipped") != 1 || !strings.Contains(lr.stdout, rewrap.ReasonLocked) {
		t.Errorf("object-lock bucket: %s", lr)
	}
	if now := readStored(t, up, lockBucket, "held", ""); now.meta["s3seal"] != heldBefore.meta["s3seal"] {
		t.Error("an object under a legal hold was rewritten")
	}
	if h := storedHeader(t, readStored(t, up, lockBucket, "free", "")); h.KeyID() != newName {
		t.Errorf("free object in the Object Lock bucket: key %s", h.KeyID())
	}

	versions, markers := listVersions()
	if len(versions) != 3 || markers != 1 {
		t.Fatalf("e/one has %d versions and %d delete markers after the rewrite", len(versions), markers)
	}
	for i, v := range versions {
		id := aws.ToString(v.VersionId)
		for _, o := range oldVersions {
			if aws.ToString(o.VersionId) == id {
				t.Errorf("old version %s is still there", id)
			}
		}
		st := readStored(t, up, bucket, "e/one", id)
		if h := storedHeader(t, st); h.KeyID() != newName {
			t.Errorf("version %d: key %s, want %s", i, h.KeyID(), newName)
		}
		if !bytes.Equal(st.body, oldBodies[i]) {
			t.Errorf("version %d: ciphertext differs from the old version in the same place", i)
		}
	}
	if aws.ToBool(versions[0].IsLatest) != true {
		t.Error("the newest version is not the current one")
	}
	mpAfter := readStored(t, up, bucket, "e/mp", "")
	if !bytes.Equal(mpAfter.body, mpBefore.body) || mpAfter.parts != mpBefore.parts || storedHeader(t, mpAfter).KeyID() != newName {
		t.Errorf("e/mp: parts %d→%d, key %s", mpBefore.parts, mpAfter.parts, storedHeader(t, mpAfter).KeyID())
	}
	// The SSE-C object opens only with the new derived key now.
	for master, want := range map[string]bool{newName: true, oldName: false} {
		k, km := ssecKey(t, ring, master, bucket, "c/ssec")
		got, err := direct.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("c/ssec"),
			SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(k), SSECustomerKeyMD5: aws.String(km)})
		if (err == nil) != want {
			t.Errorf("c/ssec with the key of %s: %v", master, err)
			continue
		}
		if err == nil {
			b, _ := io.ReadAll(got.Body)
			got.Body.Close()
			if !bytes.Equal(b, ssecBody) || got.Metadata["m"] != "1" {
				t.Errorf("c/ssec: %q %v", b, got.Metadata)
			}
		}
	}
	// Every version still reads through s3seal with the rotated key ring,
	// in the original order.
	p.Stop(t)
	p2 := startProxy(t, up, proxyOptions{Env: map[string]string{"S3SEAL_MODE": "envelope", "S3SEAL_KEYS": "local:" + ring}})
	c2 := p2.Client(t)
	for i, v := range versions {
		got := getBytes(t, c2, bucket, "e/one", func(in *s3.GetObjectInput) { in.VersionId = v.VersionId })
		if want := history[len(history)-1-i]; !bytes.Equal(got, want) {
			t.Errorf("version %d via s3seal: %d bytes, want %d", i, len(got), len(want))
		}
	}
	if got := getBytes(t, c2, bucket, "e/mp"); !bytes.Equal(got, mpBody) {
		t.Error("e/mp via s3seal: wrong content")
	}
	again := runRewrap(t, env, 0, "--bucket", bucket, "--all-versions")
	if again.code != 0 || again.num("rewrapped") != 0 || again.num("current") != 5 {
		t.Errorf("second run: %s", again)
	}
}

// latestMtime is the newest Last-Modified among objects.
func latestMtime(objs map[string]storedObject) time.Time {
	var t time.Time
	for _, o := range objs {
		if o.mtime.After(t) {
			t = o.mtime
		}
	}
	return t
}
