package main

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// defaultShutdownTimeout is s3seal's limits.shutdown_timeout when the
// configuration sets none.
const defaultShutdownTimeout = 30 * time.Second

// placeholderPrefix starts every value of an example Secret.
const placeholderPrefix = "REPLACE-WITH-"

// policyCheck applies s3seal's hardening policy to a directory's resources:
//
//   - example Secrets hold only placeholders, in stringData;
//   - pods run without a service account token, as non-root, with the
//     RuntimeDefault seccomp profile; every container has a read-only root
//     filesystem, no privilege escalation, all capabilities dropped,
//     CPU and memory requests, a memory limit and a pinned image tag;
//   - environment variables that look like secrets come from Secrets;
//   - the s3seal container has liveness (/healthz) and readiness (/readyz)
//     probes on its admin port, which listens beyond loopback so that the
//     kubelet reaches it; next to an application it is a native sidecar on
//     loopback; and the pod's termination grace period outlasts the
//     preStop pause plus s3seal's shutdown timeout.
func policyCheck(res []*resource) []finding {
	ix := newIndex(res)
	var out []finding
	for _, r := range res {
		add := func(format string, a ...any) {
			out = append(out, finding{r.file, fmt.Sprintf(format, a...)})
		}
		switch o := r.obj.(type) {
		case *corev1.Secret:
			if len(o.Data) > 0 {
				add("Secret has data: example Secrets keep placeholders in stringData")
			}
			for k, v := range o.StringData {
				if !strings.HasPrefix(v, placeholderPrefix) {
					add("Secret key %q does not hold a placeholder (%s...)", k, placeholderPrefix)
				}
			}
		case *appsv1.Deployment:
			podPolicy(ix, r, &o.Spec.Template.Spec, add)
		}
	}
	return out
}

func podPolicy(ix *index, r *resource, spec *corev1.PodSpec, add func(string, ...any)) {
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		add("automountServiceAccountToken must be false: s3seal needs no Kubernetes API access")
	}
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	type ctr struct {
		c    corev1.Container
		init bool
	}
	var all []ctr
	for _, c := range spec.InitContainers {
		all = append(all, ctr{c, true})
	}
	for _, c := range spec.Containers {
		all = append(all, ctr{c, false})
	}
	for _, x := range all {
		c := x.c
		where := fmt.Sprintf("container %q", c.Name)
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		if !isTrue(sc.RunAsNonRoot) && !isTrue(psc.RunAsNonRoot) {
			add("%s: runAsNonRoot must be true", where)
		}
		if !isTrue(sc.ReadOnlyRootFilesystem) {
			add("%s: readOnlyRootFilesystem must be true", where)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			add("%s: allowPrivilegeEscalation must be false", where)
		}
		if isTrue(sc.Privileged) {
			add("%s: must not be privileged", where)
		}
		if sc.Capabilities == nil || !hasCap(sc.Capabilities.Drop, "ALL") {
			add("%s: capabilities.drop must contain ALL", where)
		} else if len(sc.Capabilities.Add) > 0 {
			add("%s: adds capabilities %v", where, sc.Capabilities.Add)
		}
		seccomp := psc.SeccompProfile
		if sc.SeccompProfile != nil {
			seccomp = sc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			add("%s: seccompProfile must be RuntimeDefault", where)
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[res]; !ok {
				add("%s: no %s request", where, res)
			}
		}
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
			add("%s: no memory limit", where)
		}
		if tag := imageTag(c.Image); tag == "" || tag == "latest" {
			add("%s: image %q must name a version", where, c.Image)
		}
		for _, e := range c.Env {
			if e.ValueFrom == nil && looksSecret(e.Name) {
				add("%s: env %s has a literal value; take it from a Secret (valueFrom.secretKeyRef)", where, e.Name)
			}
		}
		if isS3seal(c) {
			s3sealPolicy(ix, r, spec, c, x.init, len(all) > 1, add)
		}
	}
}

// s3sealPolicy checks the s3seal container itself.
func s3sealPolicy(ix *index, r *resource, spec *corev1.PodSpec, c corev1.Container, init, shared bool, add func(string, ...any)) {
	where := fmt.Sprintf("container %q", c.Name)
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	admin, ok := env["S3SEAL_ADMIN_LISTEN"]
	adminPort := 0
	if !ok {
		add("%s: set S3SEAL_ADMIN_LISTEN to a non-loopback address: the kubelet's probes do not come from the pod's loopback", where)
	} else if host, port, err := net.SplitHostPort(admin); err != nil {
		add("%s: S3SEAL_ADMIN_LISTEN %q: %v", where, admin, err)
	} else {
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			add("%s: S3SEAL_ADMIN_LISTEN %q is loopback: the kubelet's probes cannot reach it", where, admin)
		}
		adminPort, _ = strconv.Atoi(port)
	}
	probe := func(name string, p *corev1.Probe, wantPath string) {
		if p == nil || p.HTTPGet == nil {
			add("%s: needs an HTTP %s on %s of the admin port", where, name, wantPath)
			return
		}
		if p.HTTPGet.Path != wantPath {
			add("%s: %s checks %q, want %q", where, name, p.HTTPGet.Path, wantPath)
		}
		if n := resolvePort(c, p.HTTPGet.Port); adminPort != 0 && n != adminPort {
			add("%s: %s goes to port %s, but the admin listener is %s", where, name, p.HTTPGet.Port.String(), admin)
		}
	}
	probe("livenessProbe", c.LivenessProbe, "/healthz")
	probe("readinessProbe", c.ReadinessProbe, "/readyz")
	if shared {
		if !init || c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			add("%s: next to an application, run s3seal as a native sidecar (an init container with restartPolicy: Always) so it starts first and stops last", where)
		}
		if l := env["S3SEAL_LISTEN"]; !isLoopbackAddr(l) {
			add("%s: as a sidecar, S3SEAL_LISTEN must be a loopback address (got %q)", where, l)
		}
	}
	pause := time.Duration(0)
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		pause = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	shutdown, src := shutdownTimeout(ix, r, spec, c)
	grace := time.Duration(corev1.DefaultTerminationGracePeriodSeconds) * time.Second
	if spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	}
	if grace <= pause+shutdown {
		add("terminationGracePeriodSeconds (%v) must exceed the preStop pause (%v) plus s3seal's shutdown timeout (%v, %s)", grace, pause, shutdown, src)
	}
}

// shutdownTimeout finds limits.shutdown_timeout in the configuration file
// the s3seal container is started with, if it comes from a ConfigMap of the
// directory.
func shutdownTimeout(ix *index, r *resource, spec *corev1.PodSpec, c corev1.Container) (time.Duration, string) {
	file := ""
	for i, a := range c.Args {
		if (a == "--config" || a == "-config") && i+1 < len(c.Args) {
			file = c.Args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--config="); ok {
			file = v
		}
	}
	if file == "" {
		return defaultShutdownTimeout, "the default"
	}
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			cm, ok := ix.configMaps[qualified(r.ns, v.ConfigMap.Name)]
			if !ok {
				continue
			}
			var conf struct {
				Limits struct {
					ShutdownTimeout string `json:"shutdown_timeout"`
				} `json:"limits"`
			}
			if err := yaml.Unmarshal([]byte(cm.Data[rel]), &conf); err != nil || conf.Limits.ShutdownTimeout == "" {
				return defaultShutdownTimeout, "the default"
			}
			d, err := time.ParseDuration(conf.Limits.ShutdownTimeout)
			if err != nil {
				return defaultShutdownTimeout, "the default"
			}
			return d, "from ConfigMap " + cm.Name
		}
	}
	return defaultShutdownTimeout, "the default"
}

// resolvePort returns the number of a probe port given by number or name.
func resolvePort(c corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return int(p.IntVal)
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return -1
}

func isTrue(b *bool) bool { return b != nil && *b }

func hasCap(caps []corev1.Capability, want corev1.Capability) bool {
	for _, c := range caps {
		if c == want {
			return true
		}
	}
	return false
}

// imageTag returns the tag of an image reference ("" for none); a digest
// counts as a pinned version.
func imageTag(image string) string {
	if _, digest, ok := strings.Cut(image, "@"); ok {
		return digest
	}
	name := path.Base(image)
	if _, tag, ok := strings.Cut(name, ":"); ok {
		return tag
	}
	return ""
}

func isS3seal(c corev1.Container) bool {
	repo, _, _ := strings.Cut(path.Base(c.Image), ":")
	return c.Name == "s3seal" || repo == "s3seal"
}

// looksSecret reports whether an environment variable's name suggests a
// secret value.
func looksSecret(name string) bool {
	n := strings.ToUpper(name)
	for _, w := range []string{"SECRET", "PASSWORD", "TOKEN", "PRIVATE_KEY", "CREDENTIAL"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return n == "AWS_ACCESS_KEY_ID" || n == "S3SEAL_CLIENT_ACCESS_KEY_ID"
}

func isLoopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}
