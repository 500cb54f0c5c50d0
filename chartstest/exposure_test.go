package chartstest

// Issue 12, items 3, 4 and 6: how the service is exposed (external Service,
// Ingress, Gateway API routes, /metrics kept inside), the NetworkPolicy's
// egress (DNS, PostgreSQL's port) and the ServiceMonitor.

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// typedScheme knows every kind the chart renders: Kubernetes' own, the
// Gateway API routes and the Prometheus Operator's ServiceMonitor, so each
// can be decoded strictly into its Go type.
func typedScheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{scheme.AddToScheme, gatewayv1.Install, monitoringv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// exposed is the default scenario with every way in switched on: a
// LoadBalancer, the Ingress and both routes.
var exposed = []string{
	"service.external.type=LoadBalancer",
	"ingress.enabled=true",
	"ingress.hosts={auth.example.com}",
	"gateway.httpRoute.enabled=true",
	"gateway.httpRoute.parentRefs[0].name=public",
	"gateway.httpRoute.parentRefs[0].namespace=gateways",
	"gateway.grpcRoute.enabled=true",
	"gateway.grpcRoute.parentRefs[0].name=public",
	"gateway.grpcRoute.parentRefs[0].namespace=gateways",
	"gateway.grpcRoute.parentRefs[0].sectionName=grpc",
}

func externalService(t *testing.T, r *rendered) corev1.Service {
	t.Helper()
	var s corev1.Service
	into(t, r.one(t, "Service", "nova-auth"), &s)
	return s
}

// TestExternalServiceClusterIPByDefault: the default external Service is a
// ClusterIP: no public address, no cost, nothing for `helm install --wait`
// to wait for. (Today's chart: a LoadBalancer.)
func TestExternalServiceClusterIPByDefault(t *testing.T) {
	s := externalService(t, defaultScenario(t))
	if s.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("external Service type %s, want ClusterIP by default", s.Spec.Type)
	}
	if s.Spec.ExternalTrafficPolicy != "" || len(s.Spec.LoadBalancerSourceRanges) != 0 || s.Spec.LoadBalancerClass != nil {
		t.Errorf("a ClusterIP Service with load-balancer fields: %+v", s.Spec)
	}
}

// TestLoadBalancerOptIn: a LoadBalancer keeps the client's address by default
// (Local), takes the source ranges, class and annotations, and the
// NetworkPolicy admits the source ranges to REST and gRPC — with the chart's
// default policy and no rule of their own, its clients would be refused.
func TestLoadBalancerOptIn(t *testing.T) {
	r := mustRender(t, values(t, "", dbURL,
		"service.external.type=LoadBalancer",
		"service.external.loadBalancerSourceRanges={203.0.113.0/24,2001:db8::/32}",
		"service.external.loadBalancerClass=example.com/internal",
		"service.external.annotations.service\\.beta\\.kubernetes\\.io/aws-load-balancer-scheme=internal",
	), renderOpts{})
	s := externalService(t, r)
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer || s.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Errorf("type %s externalTrafficPolicy %q, want LoadBalancer Local", s.Spec.Type, s.Spec.ExternalTrafficPolicy)
	}
	if !slices.Equal(s.Spec.LoadBalancerSourceRanges, []string{"203.0.113.0/24", "2001:db8::/32"}) {
		t.Errorf("loadBalancerSourceRanges %v", s.Spec.LoadBalancerSourceRanges)
	}
	if s.Spec.LoadBalancerClass == nil || *s.Spec.LoadBalancerClass != "example.com/internal" {
		t.Errorf("loadBalancerClass %v", s.Spec.LoadBalancerClass)
	}
	if s.Annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] != "internal" {
		t.Errorf("annotations %v", s.Annotations)
	}
	var in networkingv1.NetworkPolicy
	into(t, r.one(t, "NetworkPolicy", "nova-auth-ingress"), &in)
	admitted := map[string][]int32{}
	for _, rule := range in.Spec.Ingress {
		for _, from := range rule.From {
			if from.IPBlock == nil {
				continue
			}
			for _, p := range rule.Ports {
				admitted[from.IPBlock.CIDR] = append(admitted[from.IPBlock.CIDR], p.Port.IntVal)
			}
		}
	}
	for _, cidr := range []string{"203.0.113.0/24", "2001:db8::/32"} {
		if !slices.Equal(admitted[cidr], []int32{8080, 9080}) {
			t.Errorf("NetworkPolicy admits %s to %v, want [8080 9080]", cidr, admitted[cidr])
		}
	}

	r = mustRender(t, values(t, "", dbURL, "service.external.type=LoadBalancer", "service.external.externalTrafficPolicy=Cluster"), renderOpts{})
	if s := externalService(t, r); s.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyCluster {
		t.Errorf("externalTrafficPolicy %q, want Cluster as set", s.Spec.ExternalTrafficPolicy)
	}
}

// TestIngressAndRoutesOffByDefault: no Ingress, HTTPRoute or GRPCRoute unless asked.
func TestIngressAndRoutesOffByDefault(t *testing.T) {
	r := defaultScenario(t)
	for _, kind := range []string{"Ingress", "HTTPRoute", "GRPCRoute"} {
		if n := len(r.find(kind)); n != 0 {
			t.Errorf("%d %s rendered by default", n, kind)
		}
	}
}

// TestIngress: the REST API under /v1 through the external Service's http
// port, with class, hosts and TLS as given.
func TestIngress(t *testing.T) {
	r := mustRender(t, values(t, "", dbURL,
		"ingress.enabled=true", "ingress.className=nginx",
		"ingress.hosts={auth.example.com,auth.example.org}",
		"ingress.tls[0].secretName=auth-tls", "ingress.tls[0].hosts={auth.example.com}",
	), renderOpts{})
	var ing networkingv1.Ingress
	into(t, r.one(t, "Ingress", "nova-auth"), &ing)
	if ing.Namespace != externalService(t, r).Namespace {
		t.Errorf("Ingress in %q, not beside its Service", ing.Namespace)
	}
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" {
		t.Errorf("ingressClassName %v", ing.Spec.IngressClassName)
	}
	if len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "auth-tls" {
		t.Errorf("tls %+v", ing.Spec.TLS)
	}
	var hosts []string
	for _, rule := range ing.Spec.Rules {
		hosts = append(hosts, rule.Host)
		if len(rule.HTTP.Paths) != 1 {
			t.Fatalf("host %s: paths %+v", rule.Host, rule.HTTP.Paths)
		}
		p := rule.HTTP.Paths[0]
		if p.Path != "/v1" || *p.PathType != networkingv1.PathTypePrefix ||
			p.Backend.Service.Name != "nova-auth" || p.Backend.Service.Port.Number != 8080 {
			t.Errorf("host %s: path %s %v to %+v, want /v1 Prefix to nova-auth:8080", rule.Host, p.Path, *p.PathType, p.Backend.Service)
		}
	}
	if !slices.Equal(hosts, []string{"auth.example.com", "auth.example.org"}) {
		t.Errorf("hosts %v", hosts)
	}

	// No hosts: one rule for any host.
	r = mustRender(t, values(t, "", dbURL, "ingress.enabled=true"), renderOpts{})
	into(t, r.one(t, "Ingress", "nova-auth"), &ing)
	if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != "" || ing.Spec.IngressClassName != nil {
		t.Errorf("no hosts: rules %+v class %v, want one rule for any host and the default class", ing.Spec.Rules, ing.Spec.IngressClassName)
	}
}

// TestGatewayRoutes: HTTPRoute (REST under /v1) and GRPCRoute (AuthService
// only: no reflection or health from outside) at gateway.networking.k8s.io/v1,
// rendered without the CRDs being visible, attached to the given Gateway and
// sent to the external Service.
func TestGatewayRoutes(t *testing.T) {
	r := mustRender(t, values(t, "", append([]string{dbURL,
		"gateway.httpRoute.hostnames={auth.example.com}",
		"gateway.httpRoute.labels.team=identity",
		"gateway.grpcRoute.hostnames={grpc.auth.example.com}",
	}, exposed...)...), renderOpts{})
	ns := externalService(t, r).Namespace

	hr := r.one(t, "HTTPRoute", "nova-auth")
	if hr.GetAPIVersion() != "gateway.networking.k8s.io/v1" || hr.GetNamespace() != ns {
		t.Errorf("HTTPRoute %s in %q", hr.GetAPIVersion(), hr.GetNamespace())
	}
	var h gatewayv1.HTTPRoute
	into(t, hr, &h)
	if len(h.Spec.ParentRefs) != 1 || h.Spec.ParentRefs[0].Name != "public" || *h.Spec.ParentRefs[0].Namespace != "gateways" {
		t.Errorf("HTTPRoute parentRefs %+v", h.Spec.ParentRefs)
	}
	if len(h.Spec.Hostnames) != 1 || h.Spec.Hostnames[0] != "auth.example.com" || h.Labels["team"] != "identity" {
		t.Errorf("HTTPRoute hostnames %v labels %v", h.Spec.Hostnames, h.Labels)
	}
	if len(h.Spec.Rules) != 1 || len(h.Spec.Rules[0].Matches) != 1 || len(h.Spec.Rules[0].BackendRefs) != 1 {
		t.Fatalf("HTTPRoute rules %+v", h.Spec.Rules)
	}
	m := h.Spec.Rules[0].Matches[0].Path
	if *m.Type != gatewayv1.PathMatchPathPrefix || *m.Value != "/v1" {
		t.Errorf("HTTPRoute match %s %s, want PathPrefix /v1", *m.Type, *m.Value)
	}
	if b := h.Spec.Rules[0].BackendRefs[0]; b.Name != "nova-auth" || *b.Port != 8080 {
		t.Errorf("HTTPRoute backend %s:%d, want nova-auth:8080", b.Name, *b.Port)
	}

	gr := r.one(t, "GRPCRoute", "nova-auth")
	if gr.GetAPIVersion() != "gateway.networking.k8s.io/v1" || gr.GetNamespace() != ns {
		t.Errorf("GRPCRoute %s in %q", gr.GetAPIVersion(), gr.GetNamespace())
	}
	var g gatewayv1.GRPCRoute
	into(t, gr, &g)
	if len(g.Spec.ParentRefs) != 1 || *g.Spec.ParentRefs[0].SectionName != "grpc" {
		t.Errorf("GRPCRoute parentRefs %+v", g.Spec.ParentRefs)
	}
	if len(g.Spec.Rules) != 1 || len(g.Spec.Rules[0].Matches) != 1 || len(g.Spec.Rules[0].BackendRefs) != 1 {
		t.Fatalf("GRPCRoute rules %+v", g.Spec.Rules)
	}
	gm := g.Spec.Rules[0].Matches[0].Method
	if *gm.Type != gatewayv1.GRPCMethodMatchExact || *gm.Service != "nova.auth_service.AuthService" || gm.Method != nil {
		t.Errorf("GRPCRoute match %+v, want every method of nova.auth_service.AuthService", gm)
	}
	if b := g.Spec.Rules[0].BackendRefs[0]; b.Name != "nova-auth" || *b.Port != 9080 {
		t.Errorf("GRPCRoute backend %s:%d, want nova-auth:9080", b.Name, *b.Port)
	}
	// The Gateway speaks cleartext HTTP/2 to the pods because the port says so.
	for _, p := range externalService(t, r).Spec.Ports {
		if p.Port == 9080 && (p.AppProtocol == nil || *p.AppProtocol != "kubernetes.io/h2c") {
			t.Errorf("external grpc port appProtocol %v, want kubernetes.io/h2c", p.AppProtocol)
		}
	}

	// services empty: every gRPC service, no matches.
	r = mustRender(t, values(t, "", append([]string{dbURL, "gateway.grpcRoute.services=null"}, exposed...)...), renderOpts{})
	into(t, r.one(t, "GRPCRoute", "nova-auth"), &g)
	if len(g.Spec.Rules) != 1 || len(g.Spec.Rules[0].Matches) != 0 {
		t.Errorf("services empty: rules %+v, want one rule without matches", g.Spec.Rules)
	}
}

// TestMetricsNotExposed: /metrics is served on a port of its own
// (METRICS_PORT), which the headless Service carries for the ServiceMonitor
// and the external Service — the only backend of the LoadBalancer, the
// Ingress and the routes — does not. The service itself no longer serves
// /metrics on HTTP_PORT then (service/internal/app TestMetricsOnOwnPort).
// (Today's chart: /metrics on 8080, behind the public LoadBalancer.)
func TestMetricsNotExposed(t *testing.T) {
	for name, sets := range map[string][]string{
		"default ports": exposed,
		"other ports":   append([]string{"ports.metrics=9464", "ports.http=8000"}, exposed...),
	} {
		t.Run(name, func(t *testing.T) {
			r := mustRender(t, values(t, "", append([]string{dbURL}, sets...)...), renderOpts{})
			var cm corev1.ConfigMap
			into(t, r.one(t, "ConfigMap", "nova-auth"), &cm)
			var d appsv1.Deployment
			into(t, r.one(t, "Deployment", "nova-auth"), &d)
			// Container port number by name, and the name of the metrics port.
			byName := map[string]int32{}
			metricsPort := ""
			for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
				byName[p.Name] = p.ContainerPort
				if fmt.Sprint(p.ContainerPort) == cm.Data["METRICS_PORT"] {
					metricsPort = p.Name
				}
			}
			if cm.Data["METRICS_PORT"] == "" || cm.Data["METRICS_PORT"] == cm.Data["HTTP_PORT"] || metricsPort == "" {
				t.Fatalf("METRICS_PORT=%q HTTP_PORT=%q container ports %v: /metrics needs a container port of its own",
					cm.Data["METRICS_PORT"], cm.Data["HTTP_PORT"], byName)
			}
			// What the external Service forwards to, by container port.
			ext := externalService(t, r)
			reach := map[int32]bool{}
			for _, p := range ext.Spec.Ports {
				n := p.TargetPort.IntVal
				if p.TargetPort.StrVal != "" {
					n = byName[p.TargetPort.StrVal]
				}
				reach[n] = true
				if p.TargetPort.StrVal == metricsPort || n == byName[metricsPort] {
					t.Errorf("external Service port %s forwards to the metrics port", p.Name)
				}
			}
			if !reach[byName["http"]] || !reach[byName["grpc"]] {
				t.Errorf("external Service reaches %v, want REST and gRPC", reach)
			}
			// The Ingress and the routes send only to the external Service.
			var ing networkingv1.Ingress
			into(t, r.one(t, "Ingress", ""), &ing)
			backends := map[string]string{}
			for _, rule := range ing.Spec.Rules {
				for _, p := range rule.HTTP.Paths {
					backends["Ingress "+p.Path] = p.Backend.Service.Name
				}
			}
			var h gatewayv1.HTTPRoute
			into(t, r.one(t, "HTTPRoute", ""), &h)
			for _, b := range h.Spec.Rules[0].BackendRefs {
				backends["HTTPRoute"] = string(b.Name)
			}
			var g gatewayv1.GRPCRoute
			into(t, r.one(t, "GRPCRoute", ""), &g)
			for _, b := range g.Spec.Rules[0].BackendRefs {
				backends["GRPCRoute"] = string(b.Name)
			}
			for from, to := range backends {
				if to != ext.Name {
					t.Errorf("%s sends to %s, want only the external Service %s", from, to, ext.Name)
				}
			}
			// Prometheus still gets it: the ServiceMonitor-selected headless Service carries it.
			var hs corev1.Service
			into(t, r.one(t, "Service", "nova-auth-grpc"), &hs)
			found := false
			for _, p := range hs.Spec.Ports {
				if p.Name == "metrics" && p.TargetPort.StrVal == metricsPort {
					found = true
				}
			}
			if !found {
				t.Errorf("headless Service ports %+v: no metrics port for Prometheus", hs.Spec.Ports)
			}
		})
	}
}

// egressPorts maps "PROTO/port" to the rule's peers ("" when any destination).
func egressPorts(t *testing.T, r *rendered) map[string][]string {
	t.Helper()
	var eg networkingv1.NetworkPolicy
	into(t, r.one(t, "NetworkPolicy", "nova-auth-egress"), &eg)
	out := map[string][]string{}
	for _, rule := range eg.Spec.Egress {
		peer := ""
		if len(rule.To) > 0 {
			peer = fmt.Sprint(rule.To)
		}
		for _, p := range rule.Ports {
			proto := corev1.ProtocolTCP // the API's default
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			k := string(proto) + "/" + p.Port.String()
			out[k] = append(out[k], peer)
		}
	}
	return out
}

// TestDNSEgressAnyDestination: DNS on 53 and 5353, UDP and TCP, to any
// destination, so NodeLocal DNSCache (a link-local node address) and
// OpenShift's DNS (5353) answer. (Today's chart: 53 to kube-system only.)
func TestDNSEgressAnyDestination(t *testing.T) {
	got := egressPorts(t, defaultScenario(t))
	for _, k := range []string{"UDP/53", "TCP/53", "UDP/5353", "TCP/5353"} {
		if !slices.Contains(got[k], "") {
			t.Errorf("egress %s: peers %q, want any destination", k, got[k])
		}
	}
	// A configurable peer, for those who want to narrow it.
	r := mustRender(t, values(t, "", dbURL, "networkPolicy.egress.dns.to[0].ipBlock.cidr=169.254.20.10/32"), renderOpts{})
	if got := egressPorts(t, r)["UDP/53"]; len(got) != 1 || !strings.Contains(got[0], "169.254.20.10/32") {
		t.Errorf("dns.to set: UDP/53 peers %q", got)
	}
}

// TestDatabaseEgressPort: the PostgreSQL rule opens the port(s) of
// database.url, 5432 when it names none; with database.existingSecret (a URL
// the chart cannot read) 5432 unless networkPolicy.egress.postgresql.ports
// says otherwise. (Today's chart: 5432 always, so PgBouncer on 6432 is
// silently blocked.)
func TestDatabaseEgressPort(t *testing.T) {
	for _, tc := range []struct {
		name string
		sets []string
		want []string // TCP ports open to any destination besides DNS
	}{
		{"pgbouncer", []string{"database.url=postgres://u:p@pgbouncer.db:6432/nova?sslmode=require"}, []string{"6432"}},
		{"no port", []string{"database.url=postgresql://u:p@db.example/nova"}, []string{"5432"}},
		{"ipv6", []string{"database.url=postgres://u:p@[fd00::1]:6543/nova"}, []string{"6543"}},
		{"password with @ and :", []string{"database.url=postgres://u:p@s:s@db:7000/nova"}, []string{"7000"}},
		{"multi-host", []string{`database.url=postgres://u:p@a:5433\,b:5434\,c/nova?target_session_attrs=read-write`}, []string{"5432", "5433", "5434"}},
		{"existing secret", []string{"database.existingSecret=db"}, []string{"5432"}},
		{"existing secret with ports", []string{"database.existingSecret=db", "networkPolicy.egress.postgresql.ports[0].port=6432"}, []string{"6432"}},
		{"url with ports override", []string{"database.url=postgres://u:p@db:6432/nova", "networkPolicy.egress.postgresql.ports[0].port=5433", "networkPolicy.egress.postgresql.ports[0].protocol=TCP"}, []string{"5433"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := egressPorts(t, mustRender(t, values(t, "", tc.sets...), renderOpts{}))
			var open []string
			for k, peers := range got {
				port, isTCP := strings.CutPrefix(k, "TCP/")
				if isTCP && slices.Contains(peers, "") && port != "53" && port != "5353" {
					open = append(open, port)
				}
			}
			slices.Sort(open)
			if !slices.Equal(open, tc.want) {
				t.Errorf("PostgreSQL egress ports %v, want %v (all: %v)", open, tc.want, got)
			}
		})
	}
}

// TestServiceMonitorWithoutCRD: enabled, the ServiceMonitor renders without
// the cluster being asked for its CRD (helm template, Argo CD and Flux have no
// cluster to ask), with namespace, jobLabel, relabelings and
// metricRelabelings as given, scraping the metrics port of the headless
// Service. (Today's chart: dropped silently without the CRD.)
func TestServiceMonitorWithoutCRD(t *testing.T) {
	r := mustRender(t, values(t, "", dbURL,
		"serviceMonitor.enabled=true",
		"serviceMonitor.namespace=monitoring",
		"serviceMonitor.jobLabel=app.kubernetes.io/name",
		"serviceMonitor.relabelings[0].sourceLabels={__meta_kubernetes_pod_node_name}",
		"serviceMonitor.relabelings[0].targetLabel=node",
		"serviceMonitor.metricRelabelings[0].sourceLabels={__name__}",
		"serviceMonitor.metricRelabelings[0].regex=go_gc_.*",
		"serviceMonitor.metricRelabelings[0].action=drop",
	), renderOpts{}) // no monitoring.coreos.com capability
	o := r.one(t, "ServiceMonitor", "nova-auth")
	if o.GetAPIVersion() != "monitoring.coreos.com/v1" {
		t.Errorf("apiVersion %s", o.GetAPIVersion())
	}
	var sm monitoringv1.ServiceMonitor
	into(t, o, &sm)
	var hs corev1.Service
	into(t, r.one(t, "Service", "nova-auth-grpc"), &hs)
	if sm.Namespace != "monitoring" || !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{hs.Namespace}) {
		t.Errorf("ServiceMonitor in %q selecting namespaces %v, want monitoring selecting %s", sm.Namespace, sm.Spec.NamespaceSelector.MatchNames, hs.Namespace)
	}
	if sm.Spec.JobLabel != "app.kubernetes.io/name" {
		t.Errorf("jobLabel %q", sm.Spec.JobLabel)
	}
	for k, v := range sm.Spec.Selector.MatchLabels {
		if hs.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the headless Service", k, v)
		}
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("endpoints %+v", sm.Spec.Endpoints)
	}
	ep := sm.Spec.Endpoints[0]
	if ep.Port != "metrics" || ep.Path != "/metrics" {
		t.Errorf("endpoint port %q path %q, want metrics /metrics", ep.Port, ep.Path)
	}
	if len(ep.RelabelConfigs) != 1 || ep.RelabelConfigs[0].TargetLabel != "node" {
		t.Errorf("relabelings %+v", ep.RelabelConfigs)
	}
	if len(ep.MetricRelabelConfigs) != 1 || ep.MetricRelabelConfigs[0].Action != "drop" || ep.MetricRelabelConfigs[0].Regex != "go_gc_.*" {
		t.Errorf("metricRelabelings %+v", ep.MetricRelabelConfigs)
	}

	// Defaults: beside the Service, no jobLabel or relabelings.
	r = mustRender(t, values(t, "", dbURL, "serviceMonitor.enabled=true"), renderOpts{})
	into(t, r.one(t, "ServiceMonitor", "nova-auth"), &sm)
	if sm.Namespace != hs.Namespace || sm.Spec.JobLabel != "" || len(sm.Spec.Endpoints[0].RelabelConfigs) != 0 {
		t.Errorf("defaults: namespace %q jobLabel %q relabelings %v", sm.Namespace, sm.Spec.JobLabel, sm.Spec.Endpoints[0].RelabelConfigs)
	}
}

// TestExposureValuesRejected: the new values' bad forms fail the install
// with a message naming the value.
func TestExposureValuesRejected(t *testing.T) {
	routes := func(kind string) []string {
		return []string{dbURL, "gateway." + kind + ".enabled=true", "gateway." + kind + ".parentRefs[0].name=public"}
	}
	checkRejected(t, []rejectCase{
		{"traffic policy", []string{dbURL, "service.external.externalTrafficPolicy=Nearest"}, []string{"/service/external/externalTrafficPolicy", "'Cluster', 'Local'"}},
		{"source range not a CIDR", []string{dbURL, "service.external.loadBalancerSourceRanges={10.0.0.1}"}, []string{"/service/external/loadBalancerSourceRanges/0", "does not match pattern"}},
		{"metrics port out of range", []string{dbURL, "ports.metrics=0"}, []string{"/ports/metrics", "minimum"}},
		{"metrics port shared with http", []string{dbURL, "ports.metrics=8080"}, []string{"ports.metrics=8080 must differ from ports.http and ports.grpc"}},
		{"ingress typo", []string{dbURL, "ingress.hostname=a.example.com"}, []string{"/ingress", "additional properties 'hostname' not allowed"}},
		{"ingress host", []string{dbURL, "ingress.hosts={https://a.example.com}"}, []string{"/ingress/hosts/0", "does not match pattern"}},
		{"ingress relative path", []string{dbURL, "ingress.paths[0].path=v1", "ingress.paths[0].pathType=Prefix"}, []string{"/ingress/paths/0/path", "does not match pattern"}},
		{"ingress path type", []string{dbURL, "ingress.paths[0].path=/v1", "ingress.paths[0].pathType=Regex"}, []string{"/ingress/paths/0/pathType", "'Prefix', 'Exact', 'ImplementationSpecific'"}},
		{"ingress without the Service", []string{dbURL, "ingress.enabled=true", "service.external.enabled=false"}, []string{"ingress.enabled needs service.external.enabled"}},
		{"httpRoute without parentRefs", []string{dbURL, "gateway.httpRoute.enabled=true"}, []string{"gateway.httpRoute.enabled needs gateway.httpRoute.parentRefs"}},
		{"grpcRoute without parentRefs", []string{dbURL, "gateway.grpcRoute.enabled=true"}, []string{"gateway.grpcRoute.enabled needs gateway.grpcRoute.parentRefs"}},
		{"route without the Service", append(routes("grpcRoute"), "service.external.enabled=false"), []string{"gateway.grpcRoute.enabled needs service.external.enabled"}},
		{"parentRef without name", []string{dbURL, "gateway.httpRoute.parentRefs[0].namespace=gateways"}, []string{"/gateway/httpRoute/parentRefs/0", "missing property 'name'"}},
		{"parentRef typo", append(routes("httpRoute"), "gateway.httpRoute.parentRefs[0].section=https"), []string{"/gateway/httpRoute/parentRefs/0", "additional properties 'section' not allowed"}},
		{"route path prefix", append(routes("httpRoute"), "gateway.httpRoute.pathPrefixes={v1}"), []string{"/gateway/httpRoute/pathPrefixes/0", "does not match pattern"}},
		{"grpc service name", append(routes("grpcRoute"), "gateway.grpcRoute.services={nova/AuthService}"), []string{"/gateway/grpcRoute/services/0", "does not match pattern"}},
		{"netpol metrics port name", []string{dbURL, "networkPolicy.ingress.prometheus.ports={prometheus}"}, []string{"/networkPolicy/ingress/prometheus/ports/0", "'http', 'grpc', 'metrics'"}},
		{"postgresql port", []string{dbURL, "networkPolicy.egress.postgresql.ports[0].port=70000"}, []string{"/networkPolicy/egress/postgresql/ports/0/port", "maximum"}},
		{"url port out of range", []string{"database.url=postgres://u:secret@db:99999/nova"}, []string{"database.url names port 99999, which is not a TCP port"}},
		{"other egress rule without ports", []string{dbURL, "networkPolicy.egress.redis.ports=null"}, []string{"/networkPolicy/egress/redis", "ports"}},
		{"servicemonitor namespace", []string{dbURL, "serviceMonitor.namespace=Monitoring"}, []string{"/serviceMonitor/namespace", "does not match pattern"}},
		{"relabel action", []string{dbURL, "serviceMonitor.relabelings[0].action=delete"}, []string{"/serviceMonitor/relabelings/0/action", "'replace'"}},
		{"relabel typo", []string{dbURL, "serviceMonitor.metricRelabelings[0].source_labels={a}"}, []string{"/serviceMonitor/metricRelabelings/0", "additional properties 'source_labels' not allowed"}},
		{"jobLabel type", []string{dbURL, "serviceMonitor.jobLabel=1"}, []string{"/serviceMonitor/jobLabel", "got number, want string"}},
	})
	// The URL is a secret: a port it names wrongly is reported without it.
	if _, err := render(t, values(t, "", "database.url=postgres://u:secret@db:99999/nova"), renderOpts{}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error %v: want one that does not show the database password", err)
	}
}

// TestExposureValuesAccepted: the good neighbours of the rejected values.
func TestExposureValuesAccepted(t *testing.T) {
	for _, sets := range [][]string{
		append([]string{dbURL}, exposed...),
		{dbURL, "service.external.type=NodePort", "service.external.externalTrafficPolicy=Cluster"},
		{dbURL, "ingress.enabled=true", "ingress.hosts={*.example.com}", "ingress.paths[0].path=/", "ingress.paths[0].pathType=ImplementationSpecific"},
		{dbURL, "gateway.grpcRoute.enabled=true", "gateway.grpcRoute.parentRefs[0].name=gw", "gateway.grpcRoute.services={nova.auth_service.AuthService,grpc.health.v1.Health}"},
		{dbURL, "networkPolicy.ingress.prometheus.ports={metrics,http}"},
		{dbURL, "ports.metrics=9464", "serviceMonitor.enabled=true", "serviceMonitor.relabelings[0].action=labeldrop", "serviceMonitor.relabelings[0].regex=pod"},
	} {
		if _, err := render(t, values(t, "", sets...), renderOpts{}); err != nil {
			t.Errorf("%v: %v", sets, err)
		}
	}
}
