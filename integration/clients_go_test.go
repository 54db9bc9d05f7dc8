package integration

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3seal/s3seal/integration/testbed"
)

// The Go-based clients of the matrix: restic, rclone and mc. All three
// send Accept-Encoding: gzip, so MinIO compresses their listings.

// storeList lists the objects under prefix directly on the store.
func storeList(t *testing.T, c *matrixCell, prefix string) []types.Object {
	t.Helper()
	var out []types.Object
	pg := s3.NewListObjectsV2Paginator(c.store.Client(t), &s3.ListObjectsV2Input{Bucket: aws.String(c.bucket), Prefix: aws.String(prefix)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx(t))
		if err != nil {
			t.Fatalf("list %s/%s directly: %v", c.bucket, prefix, err)
		}
		out = append(out, page.Contents...)
	}
	return out
}

// storeObjects maps the keys under prefix on the store to their ETag and
// modification time.
func storeObjects(t *testing.T, c *matrixCell, prefix string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range storeList(t, c, prefix) {
		out[aws.ToString(o.Key)] = aws.ToString(o.ETag) + " " + aws.ToTime(o.LastModified).String()
	}
	return out
}

// storeSizes maps the keys under prefix on the store to their sizes.
func storeSizes(t *testing.T, c *matrixCell, prefix string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, o := range storeList(t, c, prefix) {
		out[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
	}
	return out
}

// ---- restic ----

func runRestic(t *testing.T, c *matrixCell) {
	src := filepath.Join(t.TempDir(), "data")
	names := makeTree(t, src, c.marker, treeSpec{small: vol(300, 80), medium: vol(8, 3), large: []int{vol(20<<20+11, 6<<20+11)}, nestedIn: 12}, 1)
	env := append(baseEnv(t),
		"RESTIC_PASSWORD=restic-matrix-password",
		"RESTIC_REPOSITORY=s3:"+c.p.Endpoint+"/"+c.bucket+"/restic",
		"AWS_ACCESS_KEY_ID="+c.p.AccessKey, "AWS_SECRET_ACCESS_KEY="+c.p.SecretKey,
		"RESTIC_CACHE_DIR="+t.TempDir(),
	)
	common := []string{"--cacert", c.p.CAFile, "-o", "s3.region=us-east-1", "-o", "s3.bucket-lookup=path", "-o", "s3.retries=1"}
	restic := func(what string, args ...string) (toolResult, bool) {
		// A failing listing costs restic about 45 s of its own retries.
		return step(t, env, "restic "+what, 2*time.Minute, "restic", append(common, args...)...)
	}
	if _, ok := restic("init", "init"); !ok {
		return
	}
	if _, ok := restic("backup", "backup", "--host", "matrix", src); !ok {
		return
	}
	restic("check --read-data", "check", "--read-data")
	dst := t.TempDir()
	if _, ok := restic("restore", "restore", "latest", "--target", dst); ok {
		sameTree(t, src, filepath.Join(dst, src), names)
	}
	// A second snapshot with one file changed, then forget the first and
	// prune what no snapshot needs.
	must(t, os.WriteFile(filepath.Join(src, names[1]), []byte(c.marker+" changed"), 0o644), "change")
	restic("second backup", "backup", "--host", "matrix", src)
	if _, ok := restic("forget --prune", "forget", "--keep-last", "1", "--prune"); ok {
		r, ok := restic("snapshots", "snapshots", "--json")
		if ok && strings.Count(r.out, `"time"`) != 1 {
			t.Errorf("after forget --keep-last 1 the repository lists other than one snapshot: %s", r.out)
		}
		restic("check after prune", "check")
	}
}

// ---- rclone ----

func rcloneEnv(t *testing.T, c *matrixCell) []string {
	// As for AWS and MinIO providers: rclone checks a multipart upload's
	// ETag, read back with a HEAD, against the MD5s of the parts it sent.
	// Under sse-kms and sse-c the object's ETag is the store's, so the
	// check is turned off there as the README says.
	multipartETag := "true"
	if c.mode == "sse-kms" || c.mode == "sse-c" {
		multipartETag = "false"
	}
	return append(baseEnv(t),
		"RCLONE_CONFIG_SEAL_TYPE=s3", "RCLONE_CONFIG_SEAL_PROVIDER=Other",
		"RCLONE_CONFIG_SEAL_ACCESS_KEY_ID="+c.p.AccessKey, "RCLONE_CONFIG_SEAL_SECRET_ACCESS_KEY="+c.p.SecretKey,
		"RCLONE_CONFIG_SEAL_ENDPOINT="+c.p.Endpoint, "RCLONE_CONFIG_SEAL_FORCE_PATH_STYLE=true", "RCLONE_CONFIG_SEAL_REGION=us-east-1",
		"RCLONE_CONFIG_SEAL_USE_MULTIPART_ETAG="+multipartETag,
	)
}

func runRclone(t *testing.T, c *matrixCell) {
	src := t.TempDir()
	// 12 MiB is over the lowered cutoff (5 MiB parts), so it goes up in
	// three parts.
	big := 12<<20 + 123
	names := makeTree(t, src, c.marker, treeSpec{small: vol(1500, 200), medium: vol(6, 2), large: []int{big}, nestedIn: 20}, 2)
	env := rcloneEnv(t, c)
	flags := []string{"--config", "/dev/null", "--ca-cert", c.p.CAFile, "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M",
		"--transfers", "8", "--checkers", "16", "--retries", "1", "--low-level-retries", "1", "--log-level", "INFO"}
	rclone := func(what string, args ...string) (toolResult, bool) {
		return step(t, env, "rclone "+what, 4*time.Minute, "rclone", append(flags, args...)...)
	}
	remote := "seal:" + c.bucket + "/copy"
	rclone("copy", "copy", src, remote)
	if got := len(storeObjects(t, c, "copy/")); got != len(names) {
		t.Errorf("rclone copy: the store holds %d objects under copy/, want %d", got, len(names))
	}
	rclone("check (hashes)", "check", src, remote)
	// The hash rclone reads for one object (HEAD, no listing): the MD5 of
	// the plaintext for a single-part and for the multipart object. Under
	// envelope, sse-kms and sse-c rules a single-part object's ETag is not
	// an MD5 (README), so rclone reads none for it, and under sse-kms and
	// sse-c neither for the multipart one; it must never read a wrong one.
	opaque := c.mode == "envelope" || c.mode == "sse-kms" || c.mode == "sse-c"
	for i, name := range []string{names[len(names)/2], "large-0.bin"} {
		b, _ := os.ReadFile(filepath.Join(src, name))
		r, ok := rclone("lsjson --stat --hash "+name, "lsjson", "--stat", "--hash", remote+"/"+name)
		if !ok || strings.Contains(r.out, md5hex(b)) {
			continue
		}
		if (i > 0 && c.mode == "envelope") || !opaque || strings.Contains(r.out, `"Hashes"`) {
			t.Errorf("rclone reads another MD5 for %s than the file's %s: %s", name, md5hex(b), toolResult{out: r.out})
		}
	}
	if r, ok := rclone("lsl", "lsl", remote); ok {
		if n := strings.Count(strings.TrimSpace(r.out), "\n") + 1; n < len(names) {
			t.Errorf("rclone lsl lists %d objects, want %d", n, len(names))
		}
	}
	down := t.TempDir()
	if _, ok := rclone("copy down", "copy", remote, down); ok {
		sameTree(t, src, down, names)
	}
	// cat --offset --count reads a range of the multipart object.
	want, _ := os.ReadFile(filepath.Join(src, "large-0.bin"))
	off, n := 5<<20-7, 1<<20+13
	if r, ok := step(t, env, "rclone cat --offset --count", 2*time.Minute, "rclone", "--config", "/dev/null", "--ca-cert", c.p.CAFile,
		"--retries", "1", "--low-level-retries", "1", "cat", "--offset", strconv.Itoa(off), "--count", strconv.Itoa(n), remote+"/large-0.bin"); ok {
		if !bytes.Equal([]byte(r.out), want[off:off+n]) {
			t.Errorf("rclone cat --offset %d --count %d: got %d other bytes", off, n, len(r.out))
		}
	}
	// sync twice: the second run transfers nothing.
	syncRemote := "seal:" + c.bucket + "/sync"
	rclone("sync", "sync", src, syncRemote)
	if r, ok := rclone("second sync", "sync", src, syncRemote); ok {
		if k := strings.Count(r.out, "Copied ("); k != 0 {
			t.Errorf("second rclone sync copied %d files again, want 0", k)
		}
	}
	if got := len(storeObjects(t, c, "sync/")); got != len(names) {
		t.Errorf("rclone sync: the store holds %d objects under sync/, want %d", got, len(names))
	}
	// One run at rclone's default cutoff (200 MiB) on MinIO in envelope
	// mode: a 201 MiB file goes up in default-sized parts.
	if !testing.Short() && c.store.Name == "minio" && c.mode == "envelope" {
		bigDir := t.TempDir()
		makeTree(t, bigDir, c.marker, treeSpec{large: []int{201 << 20}}, 3)
		dflt := []string{"--config", "/dev/null", "--ca-cert", c.p.CAFile, "--retries", "1", "--low-level-retries", "1"}
		step(t, env, "rclone copy at the default cutoff", 4*time.Minute, "rclone", append(dflt, "copy", bigDir, "seal:"+c.bucket+"/default")...)
		step(t, env, "rclone check at the default cutoff", 4*time.Minute, "rclone", append(dflt, "check", bigDir, "seal:"+c.bucket+"/default")...)
	}
}

// ---- mc ----

func mcEnv(t *testing.T, c *matrixCell) ([]string, string) {
	cfgDir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(cfgDir, "certs", "CAs"), 0o700), "mkdir")
	ca, err := os.ReadFile(c.p.CAFile)
	must(t, err, "read CA")
	must(t, os.WriteFile(filepath.Join(cfgDir, "certs", "CAs", "ca.crt"), ca, 0o600), "write CA")
	u, _ := url.Parse(c.p.Endpoint)
	env := append(baseEnv(t), "MC_HOST_seal=https://"+c.p.AccessKey+":"+c.p.SecretKey+"@"+u.Host)
	return env, cfgDir
}

func runMC(t *testing.T, c *matrixCell) {
	src := t.TempDir()
	// 17 MiB is over minio-go's 16 MiB multipart threshold, mc's default.
	names := makeTree(t, src, c.marker, treeSpec{small: vol(1200, 150), medium: vol(4, 2), large: []int{17<<20 + 5}, nestedIn: 10}, 4)
	env, cfgDir := mcEnv(t, c)
	bin := filepath.Join(testbed.BinDir(), "mc")
	mc := func(what string, args ...string) (toolResult, bool) {
		return step(t, env, "mc "+what, 4*time.Minute, bin, append([]string{"--config-dir", cfgDir, "--quiet", "--no-color"}, args...)...)
	}
	target := "seal/" + c.bucket
	mc("cp --recursive", "cp", "--recursive", src+"/", target+"/cp/")
	if got := len(storeObjects(t, c, "cp/")); got != len(names) {
		t.Errorf("mc cp --recursive: the store holds %d objects under cp/, want %d", got, len(names))
	}
	if r, ok := mc("cat (multipart object)", "cat", target+"/cp/large-0.bin"); ok {
		want, _ := os.ReadFile(filepath.Join(src, "large-0.bin"))
		if !bytes.Equal([]byte(r.out), want) {
			t.Errorf("mc cat of the multipart object: %d bytes, md5 %s, want %s", len(r.out), md5hex([]byte(r.out)), md5hex(want))
		}
	}
	// mirror twice: the first must copy everything (an exit status of 0
	// alone proves nothing), the second must rewrite nothing.
	mc("mirror", "mirror", src, target+"/mirror")
	first := storeObjects(t, c, "mirror/")
	if len(first) != len(names) {
		t.Errorf("mc mirror: the store holds %d objects under mirror/, want %d", len(first), len(names))
	}
	// New files since: the second mirror must copy exactly those.
	added := makeTree(t, filepath.Join(src, "added"), c.marker, treeSpec{small: 5}, 5)
	mc("second mirror", "mirror", src, target+"/mirror")
	second := storeObjects(t, c, "mirror/")
	changed := 0
	for k, v := range first {
		if second[k] != v {
			changed++
		}
	}
	if changed > 0 {
		t.Errorf("second mc mirror rewrote %d unchanged objects, want none", changed)
	}
	missing := 0
	for _, name := range added {
		if _, ok := second["mirror/added/"+name]; !ok {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("second mc mirror did not copy %d of the %d new files (store holds %d objects under mirror/, want %d)", missing, len(added), len(second), len(names)+len(added))
	}
	if r, ok := mc("ls -r", "ls", "-r", target+"/cp/"); ok {
		if n := strings.Count(r.out, "\n"); n != len(names) {
			t.Errorf("mc ls -r lists %d objects, want %d", n, len(names))
		}
	}
	if r, ok := mc("diff", "diff", src, target+"/mirror"); ok && strings.TrimSpace(r.out) != "" {
		t.Errorf("mc diff reports differences:\n%s", toolResult{out: r.out})
		// What mc sees of the first object it flags, and the local file.
		for _, l := range strings.Split(r.out, "\n") {
			if i := strings.Index(l, "/mirror/"); i >= 0 {
				name := l[i+len("/mirror/"):]
				st, _ := os.Stat(filepath.Join(src, name))
				if st != nil {
					t.Logf("local %s: %d bytes, modified %v", name, st.Size(), st.ModTime().UTC())
				}
				if s, ok := mc("stat", "stat", target+"/mirror/"+name); ok {
					t.Logf("mc stat:\n%s", s.out)
				}
				break
			}
		}
	}
	mc("rm -r", "rm", "-r", "--force", target+"/cp/")
	if got := len(storeObjects(t, c, "cp/")); got != 0 {
		t.Errorf("mc rm -r --force: %d objects remain under cp/ on the store", got)
	}
}
