package main

import (
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
)

// index holds one directory's resources by kind and namespace/name.
type index struct {
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	serviceAccounts map[string]*corev1.ServiceAccount
	namespaces      map[string]*corev1.Namespace
	deployments     map[string]*resource
}

func newIndex(res []*resource) *index {
	ix := &index{
		configMaps:      map[string]*corev1.ConfigMap{},
		secrets:         map[string]*corev1.Secret{},
		serviceAccounts: map[string]*corev1.ServiceAccount{},
		namespaces:      map[string]*corev1.Namespace{},
		deployments:     map[string]*resource{},
	}
	for _, r := range res {
		key := qualified(r.ns, r.name)
		switch o := r.obj.(type) {
		case *corev1.ConfigMap:
			ix.configMaps[key] = o
		case *corev1.Secret:
			ix.secrets[key] = o
		case *corev1.ServiceAccount:
			ix.serviceAccounts[key] = o
		case *corev1.Namespace:
			ix.namespaces[r.name] = o
		case *appsv1.Deployment:
			ix.deployments[key] = r
		}
	}
	return ix
}

// crossCheck makes sure the resources of one directory fit together, as
// they must for "kubectl apply -f DIR" to give working pods:
//
//   - every ConfigMap, Secret (and key in them) and ServiceAccount a pod
//     template refers to is defined, unless the reference is optional;
//   - a namespace named by a resource is defined when the directory
//     defines any Namespace;
//   - probe, Service and NetworkPolicy ports name ports the selected
//     containers declare;
//   - Service, PodDisruptionBudget and NetworkPolicy selectors select a
//     Deployment's pods, and a HorizontalPodAutoscaler scales a Deployment
//     of the directory whose containers all request the resources it
//     scales on.
func crossCheck(res []*resource) []finding {
	ix := newIndex(res)
	var out []finding
	add := func(r *resource, format string, a ...any) {
		out = append(out, finding{r.file, fmt.Sprintf(format, a...)})
	}
	for _, r := range res {
		if len(ix.namespaces) > 0 && r.ns != "" {
			if _, ok := ix.namespaces[r.ns]; !ok {
				add(r, "namespace %q is not defined in this directory", r.ns)
			}
		}
		switch o := r.obj.(type) {
		case *appsv1.Deployment:
			checkPodRefs(ix, r, &o.Spec.Template.Spec, add)
		case *corev1.Service:
			pods := ix.selected(r.ns, labels.SelectorFromSet(o.Spec.Selector), len(o.Spec.Selector) == 0)
			if len(pods) == 0 {
				add(r, "selector %v selects no Deployment's pods in this directory", o.Spec.Selector)
			}
			for _, p := range o.Spec.Ports {
				for _, d := range pods {
					if !hasPort(podSpec(d), p.TargetPort, p.Protocol) {
						add(r, "port %q: targetPort %s is not a port of %s's containers", p.Name, p.TargetPort.String(), d.name)
					}
				}
			}
		case *policyv1.PodDisruptionBudget:
			if len(ix.selectedBy(r, o.Spec.Selector)) == 0 {
				add(r, "selector selects no Deployment's pods in this directory")
			}
		case *networkingv1.NetworkPolicy:
			pods := ix.selectedBy(r, &o.Spec.PodSelector)
			if len(pods) == 0 {
				add(r, "podSelector selects no Deployment's pods in this directory")
			}
			for _, in := range o.Spec.Ingress {
				for _, p := range in.Ports {
					if p.Port == nil {
						continue
					}
					proto := corev1.ProtocolTCP
					if p.Protocol != nil {
						proto = *p.Protocol
					}
					for _, d := range pods {
						if !hasPort(podSpec(d), *p.Port, proto) {
							add(r, "ingress port %s is not a port of %s's containers", p.Port.String(), d.name)
						}
					}
				}
			}
		case *monitoringv1.ServiceMonitor:
			checkServiceMonitorRefs(res, r, o, add)
		case *autoscalingv2.HorizontalPodAutoscaler:
			ref := o.Spec.ScaleTargetRef
			d, ok := ix.deployments[qualified(r.ns, ref.Name)]
			if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || !ok {
				add(r, "scaleTargetRef %s %s/%s is not a Deployment of this directory", ref.APIVersion, ref.Kind, ref.Name)
				continue
			}
			for _, m := range o.Spec.Metrics {
				if m.Type != autoscalingv2.ResourceMetricSourceType || m.Resource == nil || m.Resource.Target.Type != autoscalingv2.UtilizationMetricType {
					continue
				}
				spec := podSpec(d)
				for _, c := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
					if _, ok := c.Resources.Requests[m.Resource.Name]; !ok {
						add(r, "scales on %s utilization, but container %q of %s requests no %s: the autoscaler cannot compute utilization", m.Resource.Name, c.Name, d.name, m.Resource.Name)
					}
				}
			}
		}
	}
	return out
}

func podSpec(d *resource) *corev1.PodSpec { return &d.obj.(*appsv1.Deployment).Spec.Template.Spec }

// selected returns the Deployments in ns whose pod labels sel matches.
func (ix *index) selected(ns string, sel labels.Selector, empty bool) []*resource {
	var out []*resource
	for _, d := range ix.deployments {
		if d.ns != ns || empty {
			continue
		}
		if sel.Matches(labels.Set(d.obj.(*appsv1.Deployment).Spec.Template.Labels)) {
			out = append(out, d)
		}
	}
	return out
}

func (ix *index) selectedBy(r *resource, ls *metav1.LabelSelector) []*resource {
	if ls == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil || sel.Empty() {
		return nil
	}
	return ix.selected(r.ns, sel, false)
}

// hasPort reports whether a container of spec declares port (a number or
// a name) with protocol.
func hasPort(spec *corev1.PodSpec, port intstr.IntOrString, proto corev1.Protocol) bool {
	for _, c := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
		if containerHasPort(c, port, proto) {
			return true
		}
	}
	return false
}

func containerHasPort(c corev1.Container, port intstr.IntOrString, proto corev1.Protocol) bool {
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	for _, p := range c.Ports {
		if p.Protocol != proto {
			continue
		}
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return true
		}
	}
	return false
}

// checkPodRefs checks what a pod template refers to by name.
func checkPodRefs(ix *index, r *resource, spec *corev1.PodSpec, add func(*resource, string, ...any)) {
	ns := r.ns
	if sa := spec.ServiceAccountName; sa != "" && sa != "default" {
		if _, ok := ix.serviceAccounts[qualified(ns, sa)]; !ok {
			add(r, "serviceAccountName %q is not defined in this directory", sa)
		}
	}
	cmKey := func(where, name, key string, optional *bool) {
		if optional != nil && *optional {
			return
		}
		cm, ok := ix.configMaps[qualified(ns, name)]
		if !ok {
			add(r, "%s: ConfigMap %q is not defined in this directory", where, name)
			return
		}
		if key == "" {
			return
		}
		if _, ok := cm.Data[key]; !ok {
			if _, ok := cm.BinaryData[key]; !ok {
				add(r, "%s: ConfigMap %q has no key %q", where, name, key)
			}
		}
	}
	secretKey := func(where, name, key string, optional *bool) {
		if optional != nil && *optional {
			return
		}
		s, ok := ix.secrets[qualified(ns, name)]
		if !ok {
			add(r, "%s: Secret %q is not defined in this directory", where, name)
			return
		}
		if key == "" {
			return
		}
		_, inData := s.Data[key]
		_, inString := s.StringData[key]
		if !inData && !inString {
			add(r, "%s: Secret %q has no key %q", where, name, key)
		}
	}
	volumes := map[string]bool{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = true
		where := "volume " + strconv.Quote(v.Name)
		switch {
		case v.ConfigMap != nil:
			cmKey(where, v.ConfigMap.Name, "", v.ConfigMap.Optional)
			for _, it := range v.ConfigMap.Items {
				cmKey(where, v.ConfigMap.Name, it.Key, v.ConfigMap.Optional)
			}
		case v.Secret != nil:
			secretKey(where, v.Secret.SecretName, "", v.Secret.Optional)
			for _, it := range v.Secret.Items {
				secretKey(where, v.Secret.SecretName, it.Key, v.Secret.Optional)
			}
		}
	}
	for _, c := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
		where := "container " + strconv.Quote(c.Name)
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				continue
			}
			if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil {
				cmKey(where+" env "+e.Name, ref.Name, ref.Key, ref.Optional)
			}
			if ref := e.ValueFrom.SecretKeyRef; ref != nil {
				secretKey(where+" env "+e.Name, ref.Name, ref.Key, ref.Optional)
			}
		}
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil {
				cmKey(where+" envFrom", e.ConfigMapRef.Name, "", e.ConfigMapRef.Optional)
			}
			if e.SecretRef != nil {
				secretKey(where+" envFrom", e.SecretRef.Name, "", e.SecretRef.Optional)
			}
		}
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
		}{{"startupProbe", c.StartupProbe}, {"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}} {
			if p.probe == nil {
				continue
			}
			var port *intstr.IntOrString
			switch {
			case p.probe.HTTPGet != nil:
				port = &p.probe.HTTPGet.Port
			case p.probe.TCPSocket != nil:
				port = &p.probe.TCPSocket.Port
			}
			if port != nil && !containerHasPort(c, *port, corev1.ProtocolTCP) {
				add(r, "%s %s: port %s is not a port of this container", where, p.name, port.String())
			}
		}
	}
}

// checkServiceMonitorRefs makes sure a ServiceMonitor scrapes something of
// the directory: its selector selects a Service in a namespace it names,
// and each endpoint's port is a named port of every Service selected.
func checkServiceMonitorRefs(res []*resource, r *resource, sm *monitoringv1.ServiceMonitor, add func(*resource, string, ...any)) {
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		return // reported by checkServiceMonitor
	}
	inNS := func(ns string) bool {
		nsSel := sm.Spec.NamespaceSelector
		if nsSel.Any {
			return true
		}
		if len(nsSel.MatchNames) == 0 {
			return ns == r.ns
		}
		for _, n := range nsSel.MatchNames {
			if n == ns {
				return true
			}
		}
		return false
	}
	var svcs []*corev1.Service
	for _, x := range res {
		if s, ok := x.obj.(*corev1.Service); ok && inNS(x.ns) && sel.Matches(labels.Set(s.Labels)) {
			svcs = append(svcs, s)
		}
	}
	if len(svcs) == 0 {
		add(r, "selector %s selects no Service in this directory", sel)
		return
	}
	for i, e := range sm.Spec.Endpoints {
		if e.Port == "" {
			continue
		}
		for _, s := range svcs {
			found := false
			for _, p := range s.Spec.Ports {
				found = found || p.Name == e.Port
			}
			if !found {
				add(r, "spec.endpoints[%d].port %q is not a port of Service %s", i, e.Port, s.Name)
			}
		}
	}
}
