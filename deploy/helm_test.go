package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3seal/s3seal/integration/testbed"
)

// The Helm chart (helm/s3seal) is linted by Helm, rendered for each way it
// is meant to be used, and every rendered manifest goes through the same
// checks as the plain manifests: the Kubernetes API server's create-path
// validation, the cross-references of one directory and the hardening
// policy (deploy/check), and s3seal's own configuration loader for each
// s3seal container.

func helmBinary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(testbed.BinDir(), "helm")
	if _, err := os.Stat(p); err != nil {
		if p2, err2 := exec.LookPath("helm"); err2 == nil {
			return p2
		}
		t.Fatalf("helm is not installed (%v): run integration/testbed/install.sh containers", err)
	}
	return p
}

// chartSecrets stands for the Secrets an operator creates out of band
// (placeholders only), so that the rendered pods' references resolve.
const chartSecrets = `apiVersion: v1
kind: Secret
metadata:
  name: %[1]s
  namespace: %[2]s
type: Opaque
stringData:
  access-key-id: REPLACE-WITH-ACCESS-KEY-ID
  secret-access-key: REPLACE-WITH-SECRET-ACCESS-KEY
  keyring: REPLACE-WITH-KEY-RING
`

func writeSecrets(t *testing.T, dir, ns string, names ...string) {
	t.Helper()
	for _, n := range names {
		doc := strings.NewReplacer("%[1]s", n, "%[2]s", ns).Replace(chartSecrets)
		if err := os.WriteFile(filepath.Join(dir, "zz-secret-"+n+".yaml"), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const tlsSecret = `apiVersion: v1
kind: Secret
metadata:
  name: s3seal-tls
  namespace: s3seal
type: Opaque
stringData:
  tls.crt: REPLACE-WITH-CERTIFICATE
  tls.key: REPLACE-WITH-PRIVATE-KEY
`

func TestHelmChart(t *testing.T) {
	testbed.Require(t)
	helm := helmBinary(t)
	check := checker(t)
	const chart = "helm/s3seal"

	code, out := run(t, ".", helm, "lint", "--strict", chart)
	if code != 0 || strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ERROR]") {
		t.Fatalf("helm lint --strict (exit %d):\n%s", code, out)
	}
	t.Logf("helm lint --strict:\n%s", out)

	scenarios := []struct {
		name  string
		set   []string
		kinds []string // kinds the rendering must hold
	}{
		{"scaled, aws-kms, acme", nil, []string{"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "ServiceAccount", "ConfigMap"}},
		{"with a ServiceMonitor", []string{"serviceMonitor.enabled=true", "serviceMonitor.labels.release=prometheus"}, []string{"ServiceMonitor"}},
		{"local key ring, certificate files, upstream credentials", []string{"keys.provider=local", "keys.local.existingSecret=s3seal-keyring", "tls.mode=files", "tls.files.existingSecret=s3seal-tls", "upstreamCredentials.existingSecret=s3seal-upstream"}, []string{"Deployment"}},
		{"self-signed, fixed replicas", []string{"tls.mode=self-signed", "autoscaling.enabled=false", "networkPolicy.enabled=false", "podDisruptionBudget.enabled=false", "config.mode=sse-kms", "keys.awsKms.keyIds={alias/a,alias/b}"}, []string{"Deployment"}},
		{"sidecar for an existing workload", []string{"mode=sidecar", "tls.mode=off", "preStopSleepSeconds=0", "sidecar.workload=billing"}, []string{"ConfigMap"}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			outDir := t.TempDir()
			args := []string{"template", "rel", chart, "--namespace", "s3seal", "--output-dir", outDir}
			for _, s := range sc.set {
				args = append(args, "--set", s)
			}
			if code, out := run(t, ".", helm, args...); code != 0 {
				t.Fatalf("helm template (exit %d):\n%s", code, out)
			}
			dir := filepath.Join(outDir, "s3seal", "templates")
			writeSecrets(t, dir, "s3seal", "s3seal-client", "s3seal-keyring", "s3seal-upstream")
			os.WriteFile(filepath.Join(dir, "zz-secret-tls.yaml"), []byte(tlsSecret), 0o644)
			code, out := run(t, ".", check, "k8s", dir)
			if code != 0 {
				t.Fatalf("check k8s of the rendered chart (exit %d):\n%s", code, out)
			}
			ms := readManifests(t, dir)
			have := map[string]bool{}
			for _, m := range ms {
				have[m.Kind] = true
			}
			for _, k := range sc.kinds {
				if !have[k] {
					t.Errorf("the rendering holds no %s", k)
				}
			}
			if have["Deployment"] {
				checkS3sealConfig(t, ms)
			} else if len(ms) != 5 { // the ConfigMap and the 4 fixture Secrets
				t.Errorf("sidecar mode renders %d manifests, want only the ConfigMap", len(ms)-4)
			}
		})
	}

	// A workload's own chart with s3seal as a dependency in sidecar mode,
	// taking the container and volumes from the named templates.
	t.Run("sidecar in an application's chart", func(t *testing.T) {
		root := t.TempDir()
		for _, c := range []string{"s3seal", "example-app"} {
			if code, out := run(t, ".", "cp", "-r", filepath.Join("helm", c), root); code != 0 {
				t.Fatal(out)
			}
		}
		app := filepath.Join(root, "example-app")
		if code, out := run(t, ".", helm, "dependency", "build", app); code != 0 {
			t.Fatalf("helm dependency build (exit %d):\n%s", code, out)
		}
		if code, out := run(t, ".", helm, "lint", "--strict", app); code != 0 || strings.Contains(out, "[WARNING]") {
			t.Fatalf("helm lint --strict example-app (exit %d):\n%s", code, out)
		}
		outDir := t.TempDir()
		if code, out := run(t, ".", helm, "template", "shop", app, "--namespace", "apps", "--output-dir", outDir); code != 0 {
			t.Fatalf("helm template (exit %d):\n%s", code, out)
		}
		// Sub-chart and parent files into one directory.
		dir := t.TempDir()
		filepath.Walk(outDir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() && strings.HasSuffix(p, ".yaml") {
				b, _ := os.ReadFile(p)
				os.WriteFile(filepath.Join(dir, strings.ReplaceAll(strings.TrimPrefix(p, outDir+"/"), "/", "_")), b, 0o644)
			}
			return nil
		})
		writeSecrets(t, dir, "apps", "example-app-s3seal-client", "example-app-s3seal-upstream")
		code, out := run(t, ".", check, "k8s", dir)
		if code != 0 {
			t.Fatalf("check k8s (exit %d):\n%s", code, out)
		}
		if !strings.Contains(out, "Deployment apps/shop") {
			t.Fatalf("no application Deployment checked:\n%s", out)
		}
		checkS3sealConfig(t, readManifests(t, dir))
	})

	// What the chart refuses to render, with a message saying why.
	for _, c := range []struct {
		name string
		set  []string
		want string
	}{
		{"reserved key provider", []string{"keys.provider=kmip"}, "reserved for a key provider being added"},
		{"unknown key provider", []string{"keys.provider=vault"}, "/keys/provider"},
		{"local key ring without its Secret", []string{"keys.provider=local"}, "keys.local.existingSecret"},
		{"TLS off when scaled", []string{"tls.mode=off"}, "tls.mode off is for sidecars"},
		{"grace period too short", []string{"terminationGracePeriodSeconds=30"}, "must exceed"},
		{"unknown mode", []string{"config.mode=rot13"}, "/config/mode"},
		{"files without a Secret", []string{"tls.mode=files"}, "tls.files.existingSecret"},
		{"sidecar beyond loopback", []string{"mode=sidecar", "tls.mode=off", "sidecar.listen=0.0.0.0:8443"}, "/sidecar/listen"},
	} {
		t.Run("refuses "+c.name, func(t *testing.T) {
			args := []string{"template", "rel", chart, "--namespace", "s3seal"}
			for _, s := range c.set {
				args = append(args, "--set", s)
			}
			code, out := run(t, ".", helm, args...)
			if code == 0 || !strings.Contains(out, c.want) {
				t.Fatalf("helm template exit %d, want a failure with %q:\n%s", code, c.want, out)
			}
		})
	}

	// The validation of rendered manifests has teeth: a value that makes
	// an invalid manifest is caught by check, not only by Helm.
	t.Run("invalid rendering caught", func(t *testing.T) {
		outDir := t.TempDir()
		if code, out := run(t, ".", helm, "template", "rel", chart, "--namespace", "s3seal", "--output-dir", outDir, "--set", "service.port=70000"); code != 0 {
			t.Fatalf("helm template: %s", out)
		}
		dir := filepath.Join(outDir, "s3seal", "templates")
		writeSecrets(t, dir, "s3seal", "s3seal-client")
		code, out := run(t, ".", check, "k8s", dir)
		if code != 1 || !strings.Contains(out, "spec.ports[0].port") {
			t.Fatalf("check k8s exit %d, want the invalid port reported:\n%s", code, out)
		}
	})
	t.Run("ServiceMonitor mistakes caught", func(t *testing.T) {
		for _, c := range []struct{ from, to, want string }{
			{"- port: admin", "- port: metrics", `port "metrics" is not a port of Service rel-s3seal-admin`},
			{"scheme: http", "scheme: gopher", "want http or https"},
			{"path: /metrics", "pathh: /metrics", "strict decoding"},
			{"app.kubernetes.io/component: admin", "app.kubernetes.io/component: adm", "selects no Service"},
		} {
			outDir := t.TempDir()
			if code, out := run(t, ".", helm, "template", "rel", chart, "--namespace", "s3seal", "--output-dir", outDir, "--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.scrapeTimeout=10s"); code != 0 {
				t.Fatalf("helm template: %s", out)
			}
			dir := filepath.Join(outDir, "s3seal", "templates")
			writeSecrets(t, dir, "s3seal", "s3seal-client")
			editFile(t, filepath.Join(dir, "servicemonitor.yaml"), func(s string) string { return mustReplace(t, s, c.from, c.to) })
			if code, out := run(t, ".", check, "k8s", dir); code != 1 || !strings.Contains(out, c.want) {
				t.Errorf("%s: check k8s exit %d, want %q:\n%s", c.to, code, c.want, out)
			}
		}
	})
}
