package integration

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3seal/s3seal/integration/testbed"
)

// TestEnvelopeTools runs s3cmd, rclone, mc and aws s3 sync against s3seal in
// envelope mode: none may complain about ETags or checksums.
func TestEnvelopeTools(t *testing.T) {
	testbed.Require(t)
	up := shared.minio
	p, _ := startEnvelopeProxy(t, up, nil)
	bucket := newBucket(t, up)
	dir := t.TempDir()
	files := map[string][]byte{
		"a.txt":       []byte("hello from the tools test\n"),
		"b.bin":       randBytes(200_000),
		"sub/big.bin": randBytes(18<<20 + 3),
	}
	for name, b := range files {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755), "mkdir")
		must(t, os.WriteFile(filepath.Join(dir, name), b, 0o644), "write")
	}
	u, _ := url.Parse(p.Endpoint)
	run := func(t *testing.T, env []string, name string, args ...string) string {
		t.Helper()
		c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(c, name, args...)
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	check := func(t *testing.T, out string) {
		t.Helper()
		low := strings.ToLower(out)
		for _, bad := range []string{"md5", "corrupt", "mismatch", "checksum", "etag"} {
			if strings.Contains(low, bad) {
				t.Errorf("output mentions %q:\n%s", bad, out)
			}
		}
	}

	t.Run("s3cmd", func(t *testing.T) {
		home := t.TempDir()
		cfg := filepath.Join(home, "s3cfg")
		must(t, os.WriteFile(cfg, []byte(strings.Join([]string{
			"[default]",
			"access_key = " + p.AccessKey,
			"secret_key = " + p.SecretKey,
			"host_base = " + u.Host,
			"host_bucket = " + u.Host,
			"use_https = True",
			"ca_certs_file = " + p.CAFile,
			"check_ssl_certificate = True",
			"signature_v2 = False",
			"bucket_location = us-east-1",
			"",
		}, "\n")), 0o600), "s3cfg")
		env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
		for _, name := range []string{"a.txt", "b.bin", "sub/big.bin"} {
			out := run(t, env, "s3cmd", "-c", cfg, "put", filepath.Join(dir, name), "s3://"+bucket+"/s3cmd/"+name)
			check(t, out)
			back := filepath.Join(home, "back-"+filepath.Base(name))
			out = run(t, env, "s3cmd", "-c", cfg, "get", "--force", "s3://"+bucket+"/s3cmd/"+name, back)
			check(t, out)
			if got, _ := os.ReadFile(back); !bytes.Equal(got, files[name]) {
				t.Errorf("%s: s3cmd got other bytes", name)
			}
		}
	})

	t.Run("rclone", func(t *testing.T) {
		env := []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
			"RCLONE_CONFIG_SEAL_TYPE=s3", "RCLONE_CONFIG_SEAL_PROVIDER=Other",
			"RCLONE_CONFIG_SEAL_ACCESS_KEY_ID=" + p.AccessKey, "RCLONE_CONFIG_SEAL_SECRET_ACCESS_KEY=" + p.SecretKey,
			"RCLONE_CONFIG_SEAL_ENDPOINT=" + p.Endpoint, "RCLONE_CONFIG_SEAL_FORCE_PATH_STYLE=true", "RCLONE_CONFIG_SEAL_REGION=us-east-1",
		}
		out := run(t, env, "rclone", "--config", "/dev/null", "--ca-cert", p.CAFile, "copy", dir, "seal:"+bucket+"/rclone")
		check(t, out)
		out = run(t, env, "rclone", "--config", "/dev/null", "--ca-cert", p.CAFile, "check", dir, "seal:"+bucket+"/rclone")
		if strings.Contains(out, "differences found") && !strings.Contains(out, "0 differences found") {
			t.Errorf("rclone check reports differences:\n%s", out)
		}
		back := t.TempDir()
		run(t, env, "rclone", "--config", "/dev/null", "--ca-cert", p.CAFile, "copy", "seal:"+bucket+"/rclone", back)
		for name, want := range files {
			if got, _ := os.ReadFile(filepath.Join(back, name)); !bytes.Equal(got, want) {
				t.Errorf("%s: rclone got other bytes", name)
			}
		}
	})

	t.Run("mc", func(t *testing.T) {
		cfgDir := t.TempDir()
		must(t, os.MkdirAll(filepath.Join(cfgDir, "certs", "CAs"), 0o700), "mkdir")
		ca, _ := os.ReadFile(p.CAFile)
		must(t, os.WriteFile(filepath.Join(cfgDir, "certs", "CAs", "ca.crt"), ca, 0o600), "ca")
		env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + cfgDir,
			"MC_HOST_seal=https://" + p.AccessKey + ":" + p.SecretKey + "@" + u.Host}
		mc := filepath.Join(testbed.BinDir(), "mc")
		for _, name := range []string{"a.txt", "sub/big.bin"} {
			out := run(t, env, mc, "--config-dir", cfgDir, "cp", filepath.Join(dir, name), "seal/"+bucket+"/mc/"+name)
			check(t, out)
			back := filepath.Join(cfgDir, "back")
			out = run(t, env, mc, "--config-dir", cfgDir, "cp", "seal/"+bucket+"/mc/"+name, back)
			check(t, out)
			if got, _ := os.ReadFile(back); !bytes.Equal(got, files[name]) {
				t.Errorf("%s: mc got other bytes", name)
			}
		}
	})

	t.Run("aws-s3-sync-twice", func(t *testing.T) {
		out := p.runCLI(t, "s3", "sync", dir, "s3://"+bucket+"/sync/")
		if n := strings.Count(out, "upload:"); n != len(files) {
			t.Errorf("first sync uploaded %d files, want %d", n, len(files))
		}
		out = p.runCLI(t, "s3", "sync", dir, "s3://"+bucket+"/sync/")
		if strings.Contains(out, "upload:") {
			t.Errorf("second sync uploaded again:\n%s", out)
		}
		ls := p.runCLI(t, "s3", "ls", "--recursive", "s3://"+bucket+"/sync/")
		if !strings.Contains(ls, " 200000 sync/b.bin") {
			t.Errorf("aws s3 ls does not show the plaintext size:\n%s", ls)
		}
	})
}
