package deploy_test

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/s3seal/s3seal/integration/testbed"
)

// The tests in this file run external tools: the Go toolchain, systemd's
// tools, and the checks of the nested module in check/ (which pins the
// Kubernetes and BuildKit versions they use). They run in the integration
// suite only; there a missing tool fails the test.

// maxExposure is the highest "systemd-analyze security" exposure score the
// unit may have (0 is fully locked down, 10 is unprotected; systemd calls
// up to 2 "OK").
const maxExposure = 2.0

// builds caches the binaries the tests build, once per test binary.
var builds struct {
	sync.Mutex
	dir  string
	bins map[string]string
	errs map[string]error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	os.Exit(code)
}

// build runs "go build" in dir (relative to the repository root) with env
// added and returns the binary, building it only once per test binary.
func build(t *testing.T, name, dir string, env []string, args ...string) string {
	t.Helper()
	builds.Lock()
	defer builds.Unlock()
	if p, ok := builds.bins[name]; ok {
		return p
	}
	if err, ok := builds.errs[name]; ok {
		t.Fatal(err)
	}
	if builds.dir == "" {
		d, err := os.MkdirTemp("", "s3seal-deploy-test-")
		if err != nil {
			t.Fatal(err)
		}
		builds.dir = d
		builds.bins = map[string]string{}
		builds.errs = map[string]error{}
	}
	goBin := requireTool(t, "go")
	out := filepath.Join(builds.dir, name)
	cmd := exec.Command(goBin, append(append([]string{"build"}, args...), "-o", out, ".")...)
	cmd.Dir = filepath.Join("..", dir)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		builds.errs[name] = fmt.Errorf("go build %s in %s: %v\n%s", name, dir, err, b)
		t.Fatal(builds.errs[name])
	}
	builds.bins[name] = out
	return out
}

// s3sealBinary builds s3seal as the Dockerfile does.
func s3sealBinary(t *testing.T) string {
	return build(t, "s3seal", ".", []string{"CGO_ENABLED=0"}, "-trimpath", "-ldflags=-s -w")
}

// checker builds the nested module's check command.
func checker(t *testing.T) string {
	return build(t, "check", "deploy/check", nil)
}

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: %v", name, err)
	}
	return p
}

// run runs a command and returns its exit code and combined output.
func run(t *testing.T, dir string, name string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		return ee.ExitCode(), out.String()
	}
	return 0, out.String()
}

func TestStaticBinary(t *testing.T) {
	testbed.Require(t)
	bin := s3sealBinary(t)
	_, out := run(t, ".", requireTool(t, "go"), "version", "-m", bin)
	if !regexp.MustCompile(`(?m)^\s*build\s+CGO_ENABLED=0$`).MatchString(out) {
		t.Fatalf("go version -m shows no CGO_ENABLED=0:\n%s", out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary names a dynamic loader (PT_INTERP): it is not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("the binary needs shared libraries %v", libs)
	}
}

// unitFiles copies the systemd files into a temporary directory, with
// ExecStart pointing at a freshly built s3seal (systemd-analyze verify
// checks that the binary exists) and edit applied to the unit.
func unitFiles(t *testing.T, edit func(string) string) string {
	t.Helper()
	bin := s3sealBinary(t)
	b, err := os.ReadFile("systemd/s3seal.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	if !strings.Contains(unit, "ExecStart=/usr/local/bin/s3seal ") {
		t.Fatal("s3seal.service: ExecStart does not run /usr/local/bin/s3seal")
	}
	unit = strings.ReplaceAll(unit, "/usr/local/bin/s3seal", bin)
	if edit != nil {
		unit = edit(unit)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s3seal.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// verifyUnit runs systemd-analyze verify, which reports unknown keys and
// bad values on its output but still exits 0; any output is a failure.
func verifyUnit(t *testing.T, dir string) (bool, string) {
	t.Helper()
	code, out := run(t, dir, requireTool(t, "systemd-analyze"), "verify", "--man=no", "./s3seal.service")
	return code == 0 && strings.TrimSpace(out) == "", out
}

func TestSystemdUnitVerifies(t *testing.T) {
	testbed.Require(t)
	if ok, out := verifyUnit(t, unitFiles(t, nil)); !ok {
		t.Fatalf("systemd-analyze verify s3seal.service:\n%s", out)
	}
	// The check sees mistakes: a misspelt key and a bad value.
	for _, bad := range []struct{ from, to string }{
		{"ProtectSystem=strict", "ProtectSystem=strickt"},
		{"UMask=0077", "Umask=0077"},
	} {
		dir := unitFiles(t, func(u string) string { return mustReplace(t, u, bad.from, bad.to) })
		if ok, _ := verifyUnit(t, dir); ok {
			t.Errorf("systemd-analyze verify accepted %s", bad.to)
		}
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for s3seal\.service: ([0-9.]+)`)

// exposure returns the unit's "systemd-analyze security" exposure score.
func exposure(t *testing.T, dir string) (float64, string) {
	t.Helper()
	_, out := run(t, dir, requireTool(t, "systemd-analyze"), "security", "--offline=yes", "--no-pager", "./s3seal.service")
	m := exposureRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no exposure level:\n%s", out)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v, out
}

func TestSystemdUnitHardening(t *testing.T) {
	testbed.Require(t)
	score, out := exposure(t, unitFiles(t, nil))
	t.Logf("exposure level %.1f (at most %.1f allowed)", score, maxExposure)
	if score > maxExposure {
		t.Fatalf("exposure level %.1f is above %.1f:\n%s", score, maxExposure, out)
	}
	// Without its hardening section the same unit scores worse than allowed.
	bare, _ := exposure(t, unitFiles(t, func(u string) string {
		i, j := strings.Index(u, "# Hardening."), strings.Index(u, "[Install]")
		if i < 0 || j < i {
			t.Fatal("s3seal.service has no \"# Hardening.\" section before [Install]")
		}
		return u[:i] + u[j:]
	}))
	if bare <= maxExposure {
		t.Fatalf("the unit without hardening scores %.1f: the threshold %.1f checks nothing", bare, maxExposure)
	}
}

func TestSystemdUser(t *testing.T) {
	testbed.Require(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	sysusers, err := filepath.Abs("systemd/s3seal.sysusers")
	if err != nil {
		t.Fatal(err)
	}
	code, out := run(t, ".", requireTool(t, "systemd-sysusers"), "--dry-run", "--root="+root, sysusers)
	if code != 0 || !strings.Contains(out, "Creating user 's3seal'") {
		t.Fatalf("systemd-sysusers (exit %d) does not create user s3seal:\n%s", code, out)
	}
	unit, err := os.ReadFile("systemd/s3seal.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"User=s3seal", "Group=s3seal", "StateDirectory=s3seal", "Type=notify", "ExecReload=/bin/kill -HUP $MAINPID"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want) + `$`).Match(unit) {
			t.Errorf("s3seal.service lacks %s", want)
		}
	}
}

func mustReplace(t *testing.T, s, from, to string) string {
	t.Helper()
	if !strings.Contains(s, from) {
		t.Fatalf("%q not found: the test's edit no longer applies", from)
	}
	return strings.Replace(s, from, to, 1)
}

// copyDir copies the regular files of src into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func editFile(t *testing.T, path string, edit func(string) string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(edit(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
}

// sidecarPatch adds s3seal to an existing Deployment as a native sidecar.
const sidecarPatch = "k8s/sidecar/patch/s3seal-sidecar.yaml"

func globYAML(t *testing.T, dir string) []string {
	t.Helper()
	fs, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(fs) == 0 {
		t.Fatalf("no *.yaml in %s (%v)", dir, err)
	}
	return fs
}

func TestKubernetesManifests(t *testing.T) {
	testbed.Require(t)
	check := checker(t)
	code, out := run(t, ".", check, "k8s", "k8s/scaled")
	if code != 0 {
		t.Fatalf("check k8s (exit %d):\n%s", code, out)
	}
	t.Logf("check k8s:\n%s", out)
	// The sidecar: its ConfigMap, and the example application patched as
	// kubectl patch would with the sidecar patch.
	code, out = run(t, ".", check, "k8s-patch", sidecarPatch, "k8s/sidecar", "k8s/sidecar/example")
	if code != 0 || !strings.Contains(out, "patched k8s/sidecar/example/deployment.yaml") {
		t.Fatalf("check k8s-patch (exit %d):\n%s", code, out)
	}
	t.Logf("check k8s-patch:\n%s", out)
	// "kubectl apply -f deploy/k8s/sidecar/" applies no Secret, which
	// would overwrite a real one with placeholders.
	for _, m := range readManifests(t, "k8s/sidecar") {
		if m.Kind == "Secret" || m.Kind == "Deployment" {
			t.Errorf("k8s/sidecar/ applies a %s %s; keep examples in k8s/sidecar/example/", m.Kind, m.Metadata.Name)
		}
	}

	// Each edit breaks one thing; the check must say so.
	cases := []struct {
		name, dir, file, from, to, want string
	}{
		{"unknown field", "scaled", "deployment.yaml", "  replicas: 3", "  replica: 3", `unknown field "spec.replica"`},
		{"bad quantity", "scaled", "deployment.yaml", "memory: 512Mi", "memory: 512 MiB", "cannot decode"},
		{"removed API version", "scaled", "hpa.yaml", "apiVersion: autoscaling/v2", "apiVersion: autoscaling/v2beta2", "autoscaling/v2beta2"},
		{"two resources in a file", "scaled", "pdb.yaml", "kind: PodDisruptionBudget", "kind: PodDisruptionBudget\nmetadata:\n  name: extra\n---\napiVersion: policy/v1\nkind: PodDisruptionBudget", "holds 2 resources"},
		{"selector does not match the template", "scaled", "deployment.yaml", "    matchLabels:\n      app.kubernetes.io/name: s3seal\n  strategy", "    matchLabels:\n      app.kubernetes.io/name: s3sea1\n  strategy", "`selector` does not match template `labels`"},
		{"port name too long", "scaled", "deployment.yaml", "- name: admin\n              containerPort: 9180", "- name: administration-port\n              containerPort: 9180", "must be no more than 15 characters"},
		{"invalid DNS name", "scaled", "configmap.yaml", "  name: s3seal\n  namespace", "  name: S3seal\n  namespace", "invalid metadata.name"},
		{"missing Secret key", "scaled", "deployment.yaml", "key: secret-access-key", "key: secret-key", `has no key "secret-key"`},
		{"Service port not on the pods", "scaled", "service.yaml", "targetPort: s3", "targetPort: https", "targetPort https is not a port"},
		{"NetworkPolicy port not on the pods", "scaled", "networkpolicy.yaml", "port: admin", "port: metrics", "ingress port metrics is not a port"},
		{"HPA target missing", "scaled", "hpa.yaml", "    name: s3seal\n  minReplicas", "    name: s3seal-x\n  minReplicas", "is not a Deployment of this directory"},
		{"HPA without CPU requests", "scaled", "deployment.yaml", "              cpu: 250m\n", "", "requests no cpu"},
		{"namespace not defined", "scaled", "pdb.yaml", "namespace: s3seal", "namespace: other", `namespace "other" is not defined`},
		{"admin listener on loopback", "scaled", "deployment.yaml", "value: 0.0.0.0:9180", "value: 127.0.0.1:9180", "is loopback"},
		{"writable root filesystem", "scaled", "deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem must be true"},
		{"literal secret", "scaled", "deployment.yaml", "            - name: GOMEMLIMIT", "            - name: AWS_SECRET_ACCESS_KEY\n              value: REPLACE-WITH-SECRET\n            - name: GOMEMLIMIT", "env AWS_SECRET_ACCESS_KEY has a literal value"},
		{"real-looking Secret value", "scaled", "secret.yaml", "REPLACE-WITH-CLIENT-SECRET-ACCESS-KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "does not hold a placeholder"},
		{"grace period too short", "scaled", "deployment.yaml", "terminationGracePeriodSeconds: 45", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds (30s) must exceed"},
		{"readiness on /healthz", "scaled", "deployment.yaml", "path: /readyz", "path: /healthz", `readinessProbe checks "/healthz"`},
		{"unpinned image", "scaled", "deployment.yaml", "image: s3seal:0.1.0", "image: s3seal:latest", "must name a version"},
		{"sidecar not native", "sidecar", "patch/s3seal-sidecar.yaml", "          restartPolicy: Always\n", "", "native sidecar"},
		{"sidecar beyond loopback", "sidecar", "patch/s3seal-sidecar.yaml", "value: 127.0.0.1:8443", "value: 0.0.0.0:8443", "S3SEAL_LISTEN must be a loopback address"},
		{"sidecar with a writable root", "sidecar", "patch/s3seal-sidecar.yaml", "            readOnlyRootFilesystem: true\n", "", `container "s3seal": readOnlyRootFilesystem must be true`},
		{"missing ConfigMap", "sidecar", "patch/s3seal-sidecar.yaml", "          configMap:\n            name: example-app-s3seal", "          configMap:\n            name: example-app-s3seal-x", `ConfigMap "example-app-s3seal-x" is not defined`},
		{"patch names another workload", "sidecar", "patch/s3seal-sidecar.yaml", "  name: example-app\nspec", "  name: other-app\nspec", `no Deployment "other-app"`},
		{"service account token", "sidecar", "example/deployment.yaml", "automountServiceAccountToken: false", "automountServiceAccountToken: true", "automountServiceAccountToken must be false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.dir == "sidecar" {
				root := t.TempDir()
				for _, sub := range []string{"", "example", "patch"} {
					src := filepath.Join("k8s", "sidecar", sub)
					dst := filepath.Join(root, sub)
					os.MkdirAll(dst, 0o755)
					for _, f := range globYAML(t, src) {
						b, _ := os.ReadFile(f)
						os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644)
					}
				}
				editFile(t, filepath.Join(root, c.file), func(s string) string { return mustReplace(t, s, c.from, c.to) })
				code, out := run(t, ".", check, "k8s-patch", filepath.Join(root, "patch", "s3seal-sidecar.yaml"), root, filepath.Join(root, "example"))
				if code != 1 || !strings.Contains(out, c.want) {
					t.Fatalf("check k8s-patch exit %d, want 1 with %q:\n%s", code, c.want, out)
				}
				return
			}
			dir := copyDir(t, filepath.Join("k8s", c.dir))
			editFile(t, filepath.Join(dir, c.file), func(s string) string { return mustReplace(t, s, c.from, c.to) })
			code, out := run(t, ".", check, "k8s", dir)
			if code != 1 || !strings.Contains(out, c.want) {
				t.Fatalf("check k8s exit %d, want 1 with %q:\n%s", code, c.want, out)
			}
		})
	}
}

// TestDockerfilesInStep: the release container file (a prebuilt binary,
// which the image test builds and runs) builds the same image as the
// multi-stage Dockerfile people build from source: the final stages agree
// instruction by instruction.
func TestDockerfilesInStep(t *testing.T) {
	testbed.Require(t)
	check := checker(t)
	code, out := run(t, ".", check, "same-image", "docker/Dockerfile", "docker/Dockerfile.release")
	if code != 0 {
		t.Fatalf("check same-image (exit %d):\n%s", code, out)
	}
	for _, c := range []struct{ name, file, from, to, want string }{
		{"environment drifts", "Dockerfile.release", "S3SEAL_ADMIN_LISTEN=0.0.0.0:9180", "S3SEAL_ADMIN_LISTEN=0.0.0.0:9181", "ENV"},
		{"user drifts", "Dockerfile", "USER 65532:65532", "USER 65533:65533", "USER"},
		{"health check drifts", "Dockerfile.release", "--retries=3", "--retries=5", "HEALTHCHECK"},
		{"file missing", "Dockerfile.release", "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n", "", "COPY"},
		{"release builds", "Dockerfile.release", "COPY s3seal /s3seal", "COPY --from=golang:1.26 /usr/local/go/bin/go /s3seal", "build context"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{"Dockerfile", "Dockerfile.release"} {
				b, err := os.ReadFile(filepath.Join("docker", f))
				if err != nil {
					t.Fatal(err)
				}
				if f == c.file {
					b = []byte(mustReplace(t, string(b), c.from, c.to))
				}
				os.WriteFile(filepath.Join(dir, f), b, 0o644)
			}
			code, out := run(t, ".", check, "same-image", filepath.Join(dir, "Dockerfile"), filepath.Join(dir, "Dockerfile.release"))
			if code != 1 || !strings.Contains(out, c.want) {
				t.Fatalf("check same-image exit %d, want 1 with %q:\n%s", code, c.want, out)
			}
		})
	}
}

func TestDockerfile(t *testing.T) {
	testbed.Require(t)
	check := checker(t)
	code, out := run(t, ".", check, "dockerfile", "docker/Dockerfile")
	if code != 0 {
		t.Fatalf("check dockerfile (exit %d):\n%s", code, out)
	}
	if _, err := os.Stat("docker/Dockerfile.dockerignore"); err != nil {
		t.Fatalf("the build context needs its ignore file: %v", err)
	}
	cases := []struct{ name, from, to, want string }{
		{"runs as root", "USER 65532:65532\n", "", "final stage runs as root"},
		{"root user", "USER 65532:65532\n", "USER root\n", "final stage runs as root"},
		{"cgo on", "CGO_ENABLED=0 GOOS", "GOOS", "go build without CGO_ENABLED=0"},
		{"ADD of a URL", "COPY go.mod go.sum ./\n", "COPY go.mod go.sum ./\nADD https://example.com/tool.tar.gz /tmp/\n", "fetches remote content"},
		{"no health check", "HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \\\n    CMD [\"/s3seal\", \"healthcheck\"]\n", "", "no HEALTHCHECK"},
		{"data outside the volume", "VOLUME /var/lib/s3seal", "VOLUME /data", "is not a VOLUME"},
		{"full base image", "FROM scratch", "FROM debian:12", "use scratch or a distroless static image"},
		{"BuildKit: FROM casing", " AS build", " as build", "FromAsCasing"},
		{"BuildKit: shell-form CMD", `CMD ["serve"]`, "CMD serve", "JSONArgsRecommended"},
		{"BuildKit: undefined variable", "COPY --from=build /out/s3seal /s3seal", "COPY --from=build /out/$BINARY /s3seal", "UndefinedVar"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := os.ReadFile("docker/Dockerfile")
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, "Dockerfile")
			os.WriteFile(f, []byte(mustReplace(t, string(b), c.from, c.to)), 0o644)
			code, out := run(t, ".", check, "dockerfile", f)
			if code != 1 || !strings.Contains(out, c.want) {
				t.Fatalf("check dockerfile exit %d, want 1 with %q:\n%s", code, c.want, out)
			}
		})
	}
	t.Run("single stage", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "Dockerfile")
		os.WriteFile(f, []byte("FROM scratch\nCOPY s3seal /s3seal\nENV S3SEAL_DATA_DIR=/data\nVOLUME /data\nUSER 65532\nHEALTHCHECK CMD [\"/s3seal\", \"healthcheck\"]\nENTRYPOINT [\"/s3seal\"]\n"), 0o644)
		code, out := run(t, ".", check, "dockerfile", f)
		if code != 1 || !strings.Contains(out, "not a multi-stage build") {
			t.Fatalf("check dockerfile exit %d, want 1 with \"not a multi-stage build\":\n%s", code, out)
		}
	})
}
