package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/warning"
	"sigs.k8s.io/yaml"

	"k8s.io/kubernetes/pkg/api/legacyscheme"
	_ "k8s.io/kubernetes/pkg/apis/apps/install"
	_ "k8s.io/kubernetes/pkg/apis/autoscaling/install"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	_ "k8s.io/kubernetes/pkg/apis/networking/install"
	_ "k8s.io/kubernetes/pkg/apis/policy/install"
	"k8s.io/kubernetes/pkg/registry/apps/deployment"
	"k8s.io/kubernetes/pkg/registry/autoscaling/horizontalpodautoscaler"
	"k8s.io/kubernetes/pkg/registry/core/configmap"
	"k8s.io/kubernetes/pkg/registry/core/namespace"
	"k8s.io/kubernetes/pkg/registry/core/secret"
	"k8s.io/kubernetes/pkg/registry/core/service"
	"k8s.io/kubernetes/pkg/registry/core/serviceaccount"
	"k8s.io/kubernetes/pkg/registry/networking/networkpolicy"
	"k8s.io/kubernetes/pkg/registry/policy/poddisruptionbudget"
)

// kindInfo is what the API server's create path needs for one kind.
type kindInfo struct {
	resource string
	strategy rest.RESTCreateStrategy
}

// knownKinds are the kinds s3seal's manifests may use, at the versions a
// current cluster serves. Anything else (a typo in kind, a removed beta
// version) is a finding.
func knownKinds() map[schema.GroupVersionKind]kindInfo {
	return map[schema.GroupVersionKind]kindInfo{
		{Version: "v1", Kind: "ConfigMap"}:                                     {"configmaps", configmap.Strategy},
		{Version: "v1", Kind: "Secret"}:                                        {"secrets", secret.Strategy},
		{Version: "v1", Kind: "Service"}:                                       {"services", service.Strategy},
		{Version: "v1", Kind: "ServiceAccount"}:                                {"serviceaccounts", serviceaccount.Strategy},
		{Version: "v1", Kind: "Namespace"}:                                     {"namespaces", namespace.Strategy},
		{Group: "apps", Version: "v1", Kind: "Deployment"}:                     {"deployments", deployment.Strategy},
		{Group: "autoscaling", Version: "v2", Kind: "HorizontalPodAutoscaler"}: {"horizontalpodautoscalers", horizontalpodautoscaler.Strategy},
		{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"}:          {"poddisruptionbudgets", poddisruptionbudget.Strategy},
		{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}:     {"networkpolicies", networkpolicy.Strategy},
	}
}

// resource is one decoded, defaulted manifest.
type resource struct {
	file string
	gvk  schema.GroupVersionKind
	obj  runtime.Object // the versioned type, defaulted
	name string
	ns   string // "" for cluster-scoped kinds; "default" when a namespaced file names none
}

// validator decodes and validates manifests with one scheme.
type validator struct {
	scheme *runtime.Scheme
	codecs serializer.CodecFactory
	kinds  map[schema.GroupVersionKind]kindInfo
}

func newValidator() *validator {
	s := legacyscheme.Scheme
	return &validator{
		scheme: s,
		codecs: serializer.NewCodecFactory(s, serializer.EnableStrict),
		kinds:  knownKinds(),
	}
}

// checkK8sDirs validates every *.yaml and *.yml file of each directory, then
// the directory as a whole.
func checkK8sDirs(dirs []string, out io.Writer) ([]finding, error) {
	v := newValidator()
	var all []finding
	for _, dir := range dirs {
		files, err := manifestFiles(dir)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: no *.yaml files", dir)
		}
		var res []*resource
		for _, f := range files {
			r, fs := v.checkFile(f)
			all = append(all, fs...)
			if r != nil {
				res = append(res, r)
				if len(fs) == 0 {
					fmt.Fprintf(out, "ok   %s: %s %s\n", f, r.gvk.Kind, qualified(r.ns, r.name))
				}
			}
		}
		all = append(all, crossCheck(res)...)
		all = append(all, policyCheck(res)...)
	}
	return all, nil
}

func manifestFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
			files = append(files, filepath.Join(dir, n))
		}
	}
	sort.Strings(files)
	return files, nil
}

func qualified(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// documents splits a YAML stream into its non-empty documents.
func documents(b []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs [][]byte
	for {
		d, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		j, err := yaml.YAMLToJSON(d)
		if err != nil {
			return nil, err
		}
		if s := strings.TrimSpace(string(j)); s == "null" || s == "" {
			continue // only comments or separators
		}
		docs = append(docs, d)
	}
}

// checkFile decodes one file strictly and runs the API server's create
// validation on it. The resource is nil when the file cannot be decoded.
func (v *validator) checkFile(file string) (*resource, []finding) {
	fail := func(format string, a ...any) []finding {
		return []finding{{file, fmt.Sprintf(format, a...)}}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fail("%v", err)
	}
	docs, err := documents(b)
	if err != nil {
		return nil, fail("not YAML: %v", err)
	}
	if len(docs) != 1 {
		return nil, fail("holds %d resources; keep exactly one resource per file", len(docs))
	}
	var out []finding
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if yaml.Unmarshal(docs[0], &head) == nil && head.APIVersion == serviceMonitorGVK.GroupVersion().String() && head.Kind == serviceMonitorGVK.Kind {
		return checkServiceMonitor(file, docs[0])
	}
	obj, gvk, err := v.codecs.UniversalDeserializer().Decode(docs[0], nil, nil)
	if err != nil {
		strict, ok := runtime.AsStrictDecodingError(err)
		if !ok || obj == nil {
			return nil, fail("cannot decode: %v", err)
		}
		for _, e := range strict.Errors() {
			out = append(out, finding{file, "strict decoding: " + e.Error()})
		}
	}
	info, ok := v.kinds[*gvk]
	if !ok {
		return nil, append(out, fail("%s is not a kind these manifests may use (known: %s, monitoring.coreos.com/v1 ServiceMonitor)", gvk, v.knownList())...)
	}
	v.scheme.Default(obj)
	acc, err := meta.Accessor(obj)
	if err != nil {
		return nil, append(out, fail("%v", err)...)
	}
	r := &resource{file: file, gvk: *gvk, obj: obj, name: acc.GetName()}
	if info.strategy.NamespaceScoped() {
		r.ns = acc.GetNamespace()
		if r.ns == "" {
			// kubectl sends it to the current namespace.
			r.ns = "default"
		}
	}
	out = append(out, v.create(r, info)...)
	return r, out
}

// create runs the API server's create path for r without storing it:
// conversion to the internal version, system fields, the strategy's
// PrepareForCreate, validation (handwritten and declarative) and warnings.
func (v *validator) create(r *resource, info kindInfo) []finding {
	internal, err := v.scheme.ConvertToVersion(r.obj.DeepCopyObject(), schema.GroupVersion{Group: r.gvk.Group, Version: runtime.APIVersionInternal})
	if err != nil {
		return []finding{{r.file, fmt.Sprintf("conversion: %v", err)}}
	}
	acc, err := meta.Accessor(internal)
	if err != nil {
		return []finding{{r.file, err.Error()}}
	}
	if info.strategy.NamespaceScoped() {
		acc.SetNamespace(r.ns)
	}
	rest.FillObjectMetaSystemFields(acc)
	prefix := "apis"
	if r.gvk.Group == "" {
		prefix = "api"
	}
	rec := &warnings{}
	ctx := genericapirequest.WithNamespace(context.Background(), r.ns)
	ctx = genericapirequest.WithRequestInfo(ctx, &genericapirequest.RequestInfo{
		IsResourceRequest: true,
		Verb:              "create",
		APIPrefix:         prefix,
		APIGroup:          r.gvk.Group,
		APIVersion:        r.gvk.Version,
		Namespace:         r.ns,
		Resource:          info.resource,
		Name:              r.name,
	})
	ctx = warning.WithWarningRecorder(ctx, rec)
	var out []finding
	if err := rest.BeforeCreate(info.strategy, ctx, internal); err != nil {
		var st apierrors.APIStatus
		if errors.As(err, &st) && st.Status().Details != nil && len(st.Status().Details.Causes) > 0 {
			for _, c := range st.Status().Details.Causes {
				out = append(out, finding{r.file, fmt.Sprintf("invalid %s: %s", c.Field, c.Message)})
			}
		} else {
			out = append(out, finding{r.file, "rejected: " + err.Error()})
		}
	}
	for _, w := range rec.list() {
		out = append(out, finding{r.file, "warning: " + w})
	}
	return out
}

func (v *validator) knownList() string {
	var s []string
	for gvk := range v.kinds {
		s = append(s, strings.TrimPrefix(gvk.GroupVersion().String()+" "+gvk.Kind, "/"))
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// warnings records what the API server would send back as warnings.
type warnings struct {
	mu sync.Mutex // protects w
	w  []string
}

func (r *warnings) AddWarning(_, text string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.w = append(r.w, text)
}

func (r *warnings) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.w...)
}
