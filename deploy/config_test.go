package deploy_test

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/s3seal/s3seal/config"
)

// These tests need no tools and run in every "go test": the configuration
// the deploy files give s3seal must load with s3seal's own loader, and
// secrets must stay out of ConfigMaps.

// manifest is the part of a Kubernetes manifest these tests read.
type manifest struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Spec       struct {
		Template struct {
			Spec struct {
				InitContainers []container `yaml:"initContainers"`
				Containers     []container `yaml:"containers"`
				Volumes        []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

func readManifests(t *testing.T, dir string) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", dir, err)
	}
	var out []manifest
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m manifest
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, m)
	}
	return out
}

// imageEnv returns the ENV the Dockerfile's final stage sets.
func imageEnv(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	env := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "FROM ") {
			clear(env)
		}
		if rest, ok := strings.CutPrefix(line, "ENV "); ok {
			for _, kv := range strings.Fields(rest) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile: ENV %q is not KEY=VALUE", kv)
				}
				env[k] = v
			}
		}
	}
	if len(env) == 0 {
		t.Fatal("Dockerfile: final stage sets no ENV")
	}
	return env
}

func envLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// TestKubernetesConfig loads the configuration each s3seal container of the
// Kubernetes manifests gets: the image's ENV, overridden by the container's
// environment (Secret references resolved to the example Secret's
// placeholders), over the YAML file from the mounted ConfigMap. The sidecar
// is checked in the example application it is patched into.
func TestKubernetesConfig(t *testing.T) {
	t.Run("sidecar", func(t *testing.T) { checkS3sealConfig(t, sidecarManifests(t)) })
	t.Run("scaled", func(t *testing.T) { checkS3sealConfig(t, readManifests(t, "k8s/scaled")) })
}

// sidecarManifests returns the sidecar's ConfigMap, the example Secret and
// the example application with the sidecar patch's init containers and
// volumes added, as kubectl patch adds them (the patch only adds entries).
func sidecarManifests(t *testing.T) []manifest {
	t.Helper()
	ms := append(readManifests(t, "k8s/sidecar"), readManifests(t, "k8s/sidecar/example")...)
	patch := readManifests(t, "k8s/sidecar/patch")
	if len(patch) != 1 || patch[0].Kind != "Deployment" {
		t.Fatalf("k8s/sidecar/patch: want one Deployment patch, got %d files", len(patch))
	}
	p := patch[0].Spec.Template.Spec
	patched := 0
	for i := range ms {
		if ms[i].Kind == "Deployment" && ms[i].Metadata.Name == patch[0].Metadata.Name {
			spec := &ms[i].Spec.Template.Spec
			spec.InitContainers = append(spec.InitContainers, p.InitContainers...)
			spec.Containers = append(spec.Containers, p.Containers...)
			spec.Volumes = append(spec.Volumes, p.Volumes...)
			patched++
		}
	}
	if patched != 1 {
		t.Fatalf("the patch names Deployment %q, found %d in the example", patch[0].Metadata.Name, patched)
	}
	return ms
}

// checkS3sealConfig loads the configuration of every s3seal container of
// a set of manifests (a directory, or a chart's rendering).
func checkS3sealConfig(t *testing.T, ms []manifest) {
	t.Helper()
	base := imageEnv(t)
	dir := "the manifests"
	configMaps := map[string]map[string]string{}
	secrets := map[string]map[string]string{}
	var deployments []manifest
	for _, m := range ms {
		switch m.Kind {
		case "ConfigMap":
			configMaps[m.Metadata.Name] = m.Data
		case "Secret":
			secrets[m.Metadata.Name] = m.StringData
		case "Deployment":
			deployments = append(deployments, m)
		}
	}
	// Secrets stay out of ConfigMaps.
	for name, data := range configMaps {
		for key, v := range data {
			var c config.Config
			if err := config.Parse([]byte(v), &c); err != nil {
				t.Fatalf("ConfigMap %s key %s: %v", name, key, err)
			}
			for _, cl := range c.Clients {
				if cl.SecretAccessKey != "" {
					t.Errorf("ConfigMap %s: client %s has a secret; keep secrets in Secrets", name, cl.Name)
				}
			}
			if c.Upstream.SecretAccessKey != "" || c.Upstream.SessionToken != "" {
				t.Errorf("ConfigMap %s: upstream credentials; keep secrets in Secrets", name)
			}
		}
	}
	found := 0
	for _, d := range deployments {
		spec := d.Spec.Template.Spec
		for _, c := range append(append([]container(nil), spec.InitContainers...), spec.Containers...) {
			if c.Name != "s3seal" {
				continue
			}
			found++
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for _, e := range c.Env {
				switch {
				case e.ValueFrom == nil:
					env[e.Name] = e.Value
				case e.ValueFrom.SecretKeyRef != nil:
					ref := e.ValueFrom.SecretKeyRef
					v, ok := secrets[ref.Name][ref.Key]
					if !ok {
						t.Fatalf("%s: env %s: Secret %s has no key %s", d.Metadata.Name, e.Name, ref.Name, ref.Key)
					}
					env[e.Name] = v
				}
			}
			file := configFile(t, d, c, configMaps)
			cfg, err := config.Load(config.Source{File: file, LookupEnv: envLookup(env), HomeDir: t.TempDir()})
			if err != nil {
				t.Fatalf("%s: s3seal would not start: %v", d.Metadata.Name, err)
			}
			if isLoopback(cfg.AdminListen) {
				t.Errorf("%s: admin listener %s is loopback: the kubelet's probes cannot reach it", d.Metadata.Name, cfg.AdminListen)
			}
			if cfg.DataDir != base["S3SEAL_DATA_DIR"] {
				t.Errorf("%s: data directory %s, want the image's volume %s", d.Metadata.Name, cfg.DataDir, base["S3SEAL_DATA_DIR"])
			}
			if len(cfg.Clients) == 0 && !cfg.Sidecar.TrustLoopback {
				t.Errorf("%s: no client identity", d.Metadata.Name)
			}
			if len(spec.Containers)+len(spec.InitContainers) > 1 && !isLoopback(cfg.Listen) {
				t.Errorf("%s: as a sidecar, s3seal listens on %s; keep it on loopback", d.Metadata.Name, cfg.Listen)
			}
			if len(spec.Containers)+len(spec.InitContainers) == 1 && cfg.TLS.Mode == "acme" {
				// Replicas share certificates and ACME locks.
				if cfg.TLS.Storage.Type != "s3" || cfg.TLS.Storage.Bucket == "" {
					t.Errorf("%s: tls %s, storage %s: replicas must share ACME certificates through S3", d.Metadata.Name, cfg.TLS.Mode, cfg.TLS.Storage.Type)
				}
			}
		}
	}
	if found == 0 {
		t.Fatalf("%s: no s3seal container", dir)
	}
}

// configFile writes the --config file a container reads from its ConfigMap
// volume to a temporary file.
func configFile(t *testing.T, d manifest, c container, configMaps map[string]map[string]string) string {
	t.Helper()
	path := ""
	for i, a := range c.Args {
		if a == "--config" && i+1 < len(c.Args) {
			path = c.Args[i+1]
		}
	}
	if path == "" {
		return ""
	}
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			data, ok := configMaps[v.ConfigMap.Name][rel]
			if !ok {
				t.Fatalf("%s: --config %s: ConfigMap %s has no key %s", d.Metadata.Name, path, v.ConfigMap.Name, rel)
			}
			f := filepath.Join(t.TempDir(), rel)
			if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("%s: --config %s is not in a ConfigMap volume", d.Metadata.Name, path)
	return ""
}

// TestSystemdConfigExamples loads the single-host examples as the unit
// would: the YAML file alone, and with every variable of the environment
// file set.
func TestSystemdConfigExamples(t *testing.T) {
	const file = "systemd/s3seal.yaml.example"
	env := map[string]string{"STATE_DIRECTORY": "/var/lib/s3seal"}
	cfg, err := config.Load(config.Source{File: file, LookupEnv: envLookup(env), HomeDir: t.TempDir()})
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if cfg.DataDir != "/var/lib/s3seal" {
		t.Errorf("data directory %s, want the unit's StateDirectory /var/lib/s3seal", cfg.DataDir)
	}
	if len(cfg.Clients) < 2 {
		t.Errorf("%d clients, want at least two", len(cfg.Clients))
	}
	// As installed, the example starts on a private host: ACME would need a
	// public name and reachable ports to complete a challenge.
	if cfg.TLS.Mode == "acme" {
		t.Errorf("the example defaults to tls.mode acme, which cannot complete a challenge on a private host")
	}
	unit, err := os.ReadFile("systemd/s3seal.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"s3seal.yaml.example /etc/s3seal/s3seal.yaml", "s3seal.env.example /etc/s3seal/s3seal.env", "EnvironmentFile=-/etc/s3seal/s3seal.env"} {
		if !strings.Contains(string(unit), step) {
			t.Errorf("s3seal.service does not mention %q", step)
		}
	}
	for _, c := range cfg.Clients {
		if len(c.Buckets) == 0 {
			t.Errorf("client %s is not limited to buckets", c.Name)
		}
		if !strings.HasPrefix(c.SecretAccessKey.Value(), "REPLACE-WITH-") {
			t.Errorf("client %s: the example secret is not a placeholder", c.Name)
		}
	}

	f, err := os.Open("systemd/s3seal.env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "#")
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(k, " \t") || k == "" {
			continue
		}
		env[k] = v
		n++
	}
	if n == 0 {
		t.Fatal("s3seal.env.example sets no variables")
	}
	// The example CA bundle does not exist here.
	delete(env, "AWS_CA_BUNDLE")
	if _, err := config.Load(config.Source{File: file, LookupEnv: envLookup(env), HomeDir: t.TempDir()}); err != nil {
		t.Fatalf("%s with every variable of s3seal.env.example: %v", file, err)
	}
}
