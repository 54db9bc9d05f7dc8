package main

import (
	"fmt"
	"regexp"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// serviceMonitorGVK is the Prometheus Operator's ServiceMonitor, a custom
// resource: the API server validates it against the CRD's schema, not
// with a registry strategy.
var serviceMonitorGVK = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}

// promDuration is the duration format of Prometheus (and of the CRD's
// interval and scrapeTimeout fields).
var promDuration = regexp.MustCompile(`^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`)

// checkServiceMonitor validates a ServiceMonitor as far as can be done
// without the cluster's CRD: strict decoding into the Prometheus Operator's
// API types (unknown and mistyped fields are findings), the API server's
// object-metadata validation, and the constraints of the CRD's schema and
// of Prometheus that s3seal's chart relies on (endpoints that name a port,
// http or https, Prometheus durations, a scrape timeout within the
// interval, a valid selector).
func checkServiceMonitor(file string, doc []byte) (*resource, []finding) {
	var out []finding
	add := func(format string, a ...any) { out = append(out, finding{file, fmt.Sprintf(format, a...)}) }
	var sm monitoringv1.ServiceMonitor
	if err := yaml.UnmarshalStrict(doc, &sm); err != nil {
		add("strict decoding: %v", err)
		if yaml.Unmarshal(doc, &sm) != nil {
			return nil, out
		}
	}
	ns := sm.Namespace
	if ns == "" {
		ns = "default"
	}
	meta := sm.ObjectMeta.DeepCopy()
	meta.Namespace = ns
	for _, e := range apivalidation.ValidateObjectMeta(meta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata")) {
		add("invalid %s: %s", e.Field, e.ErrorBody())
	}
	// The fields checked below, read independently of how the API types
	// spell them in Go.
	var spec struct {
		Spec struct {
			Endpoints []struct {
				Port          string `json:"port"`
				TargetPort    any    `json:"targetPort"`
				Path          string `json:"path"`
				Scheme        string `json:"scheme"`
				Interval      string `json:"interval"`
				ScrapeTimeout string `json:"scrapeTimeout"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(doc, &spec); err != nil {
		add("cannot decode: %v", err)
		return nil, out
	}
	if _, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector); err != nil {
		add("invalid spec.selector: %v", err)
	}
	if len(sm.Spec.Selector.MatchLabels) == 0 && len(sm.Spec.Selector.MatchExpressions) == 0 {
		add("spec.selector is empty: it would select every Service")
	}
	if len(spec.Spec.Endpoints) == 0 {
		add("spec.endpoints is empty: nothing would be scraped")
	}
	for i, e := range spec.Spec.Endpoints {
		p := fmt.Sprintf("spec.endpoints[%d]", i)
		if (e.Port == "") == (e.TargetPort == nil) {
			add("%s: name exactly one of port (a Service port name) and targetPort", p)
		}
		switch e.Scheme {
		case "", "http", "https", "HTTP", "HTTPS":
		default:
			add("%s.scheme: want http or https, got %q", p, e.Scheme)
		}
		for name, d := range map[string]string{"interval": e.Interval, "scrapeTimeout": e.ScrapeTimeout} {
			if d != "" && !promDuration.MatchString(d) {
				add("%s.%s: %q is not a Prometheus duration (such as 30s or 1m)", p, name, d)
			}
		}
		if iv, err1 := time.ParseDuration(e.Interval); err1 == nil {
			if st, err2 := time.ParseDuration(e.ScrapeTimeout); err2 == nil && st > iv {
				add("%s: scrapeTimeout %s exceeds interval %s; Prometheus refuses the configuration", p, e.ScrapeTimeout, e.Interval)
			}
		}
	}
	return &resource{file: file, gvk: serviceMonitorGVK, obj: &sm, name: sm.Name, ns: ns}, out
}
