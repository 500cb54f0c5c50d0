package suite

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authpb "github.com/nova-auth/nova-auth/service/proto/nova/auth_service"
)

const (
	// monitoringNS is where the chart's prometheus ingress rule admits
	// pods labelled app.kubernetes.io/name=prometheus to /metrics.
	monitoringNS = "monitoring"
	// gatewayNS is where its apiGateway rule admits HTTP and gRPC.
	gatewayNS = "api-gateway"
	// dbAlias is a headless Service in ns whose endpoint is the database:
	// a name for PostgreSQL, so that one probe needs DNS and the database.
	dbAlias = "e2e-postgres"
	// httpAddr is the external Service's REST port by its DNS name.
	httpAddr = release + "." + ns + ".svc.cluster.local:8080"
)

// denied matches how a connection the policy engine refuses fails: kube-router
// REJECTs (connection refused), other engines drop (a timeout). A DNS or
// other error means the probe failed for another reason than the policy.
var denied = regexp.MustCompile(`connection refused|i/o timeout|deadline exceeded|DeadlineExceeded|no route to host|context canceled`)

// lookupFailed matches a name that did not resolve (Go's resolver: "lookup
// NAME: ..."): the probe never reached the connection the policy decides.
var lookupFailed = regexp.MustCompile(`lookup [^ ]+( on [^ ]+)?: `)

// probe is one pod that checks one connection from one place.
type probe struct {
	name, namespace string
	labels          map[string]string
	image           string
	args            []string
	env             []corev1.EnvVar
	// init are the arguments of an e2eprobe init container, run first.
	init []string
	// allowed says whether the connection should succeed; a denied one is
	// checked only where the CNI enforces NetworkPolicy.
	allowed bool
	why     string
}

// runProbes starts every probe's pod at once, then checks each.
func runProbes(t *testing.T, e *env, probes []probe) {
	t.Helper()
	for _, p := range probes {
		pod := restrictedPod(p.name, corev1.Container{Name: "probe", Image: p.image, Args: p.args, Env: p.env})
		if p.init != nil {
			pod.Spec.InitContainers = restrictedPod("", corev1.Container{Name: "init", Image: probeRef, Args: p.init}).Spec.Containers
		}
		for k, v := range p.labels {
			pod.Labels[k] = v
		}
		startPod(t, e, p.namespace, pod)
	}
	var wg sync.WaitGroup
	type result struct {
		ok  bool
		log string
	}
	results := make([]result, len(probes))
	for i, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			phase, lg := waitPod(t, e, p.namespace, p.name, 90*time.Second)
			if p.init != nil {
				il, _ := e.c.Client.CoreV1().Pods(p.namespace).GetLogs(p.name, &corev1.PodLogOptions{Container: "init"}).DoRaw(context.Background())
				lg = "init: " + string(il) + lg
			}
			results[i] = result{phase == corev1.PodSucceeded, strings.TrimSpace(lg)}
			e.c.Client.CoreV1().Pods(p.namespace).Delete(context.Background(), p.name, metav1.DeleteOptions{}) //nolint:errcheck
		}()
	}
	wg.Wait()
	for i, p := range probes {
		r := results[i]
		switch {
		case p.allowed && !r.ok:
			t.Errorf("%s (pod %s/%s): failed, want it to work:\n%s", p.why, p.namespace, p.name, r.log)
		case p.allowed:
			t.Logf("%s: works (%s)", p.why, lastLine(r.log))
		case !e.c.NetworkPolicies:
			t.Logf("%s: not enforced by the %s cluster's CNI (connected: %v)", p.why, e.c.Provider, r.ok)
		case r.ok:
			t.Errorf("%s (pod %s/%s): the connection succeeded, want the NetworkPolicy to refuse it:\n%s", p.why, p.namespace, p.name, r.log)
		case !denied.MatchString(r.log) || lookupFailed.MatchString(r.log):
			t.Errorf("%s (pod %s/%s): failed, but not as a refused or timed-out connection (the probe is broken?):\n%s", p.why, p.namespace, p.name, r.log)
		default:
			t.Logf("%s: refused as the policy says (%s)", p.why, lastLine(r.log))
		}
	}
}

// testNetworkPolicy checks the chart's two policies from where a user's
// traffic comes: Nova service namespaces reach gRPC, the api-gateway
// namespace REST, Prometheus in monitoring /metrics; another namespace
// reaches neither port. And the service's own egress under the egress
// policy: DNS and PostgreSQL work (a pod with the release's labels resolves
// the database by name and migrates; a restarted service pod becomes Ready,
// which needs the database), anything else is refused. The refusals are
// checked where the CNI enforces NetworkPolicy (kind).
func testNetworkPolicy(t *testing.T, e *env) {
	ensureNamespace(t, e, clientNS, map[string]string{"nova.io/service": "true"})
	ensureNamespace(t, e, outsiderNS, nil)
	ensureNamespace(t, e, monitoringNS, nil)
	ensureNamespace(t, e, gatewayNS, nil)
	pods := readyServerPods(t, e)
	if len(pods) == 0 {
		t.Fatal("no Ready service pod")
	}
	metricsURL := "http://" + net.JoinHostPort(pods[0].Status.PodIP, "9090") + "/metrics"
	databaseAlias(t, e)

	// An e2eprobe that should connect tries for a while: the policy engine
	// admits a new pod's address a moment after it starts. One that should
	// be refused waits first: until the engine applies the egress policy to
	// a new pod, its egress is open.
	allow := func(args ...string) []string { return append([]string{args[0], "--retry", "30s"}, args[1:]...) }
	deny := func(args ...string) []string {
		return append([]string{args[0], "--settle", "10s", "--retry", "10s"}, args[1:]...)
	}
	dbHost := dbAlias + "." + ns + ".svc.cluster.local:" + dbPort(t, e)
	healthcheck := []string{"healthcheck", "--addr", grpcAddr, "--service", authpb.AuthService_ServiceDesc.ServiceName, "--timeout", "5s"}
	const image = "ghcr.io/nova-auth/auth-service:0.1.0"
	// Pods of the release (not the server: the Service does not pick them),
	// so the egress policy applies to them as to the service.
	releaseLabels := map[string]string{"app.kubernetes.io/name": "auth", "app.kubernetes.io/instance": release, "app.kubernetes.io/component": "e2e-egress"}
	runProbes(t, e, []probe{
		{name: "e2e-grpc-nova", namespace: clientNS, image: image, args: healthcheck, allowed: true,
			why: "gRPC health from a Nova service namespace through the Service"},
		{name: "e2e-http-gateway", namespace: gatewayNS, image: probeRef, args: allow("http", "http://"+httpAddr+"/health"), allowed: true,
			why: "REST from the api-gateway namespace through the Service"},
		{name: "e2e-metrics-prometheus", namespace: monitoringNS, labels: map[string]string{"app.kubernetes.io/name": "prometheus"},
			image: probeRef, args: allow("http", metricsURL, "grpc_server_handled_total"), allowed: true,
			why: "a Prometheus pod in monitoring scraping " + metricsURL},
		// DNS and a TCP connection once the policy applies (init), then
		// the PostgreSQL protocol (migrate) to the database by name.
		{name: "e2e-egress-db-by-name", namespace: ns, labels: releaseLabels, init: []string{"dial", "--settle", "10s", "--retry", "30s", dbHost},
			image: image, args: []string{"migrate"},
			env: []corev1.EnvVar{{Name: "DATABASE_URL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: dbAlias}, Key: "DATABASE_URL"}}}},
			allowed: true, why: "the release's egress: DNS (" + dbAlias + "." + ns + ") and PostgreSQL"},
		{name: "e2e-grpc-outsider", namespace: outsiderNS, image: image, args: healthcheck,
			why: "gRPC 9080 from " + outsiderNS + " (not a Nova namespace)"},
		{name: "e2e-http-outsider", namespace: outsiderNS, image: probeRef, args: deny("http", "http://"+httpAddr+"/health"),
			why: "HTTP 8080 from " + outsiderNS},
		{name: "e2e-metrics-other-pod", namespace: monitoringNS, image: probeRef, args: deny("http", metricsURL),
			why: "/metrics from a pod in monitoring that is not Prometheus"},
		{name: "e2e-egress-api", namespace: ns, labels: releaseLabels, image: probeRef, args: deny("dial", "kubernetes.default.svc.cluster.local:443"),
			why: "the release's egress to the Kubernetes API (no rule allows it)"},
		{name: "e2e-api-outsider", namespace: outsiderNS, image: probeRef, args: allow("dial", "kubernetes.default.svc.cluster.local:443"), allowed: true,
			why: "the Kubernetes API from a namespace without policies (the control of the refusal above)"},
	})

	// A service pod that restarts must reach the database again to be
	// Ready (/readiness pings it), through the egress policy.
	ctx := context.Background()
	victim := pods[0].Name
	if err := e.c.Client.CoreV1().Pods(ns).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := waitDeploymentReady(ctx, e.c.Client, ns, release, 3, 3*time.Minute); err != nil {
		t.Fatalf("after deleting pod %s: %v", victim, err)
	}
	for _, p := range readyServerPods(t, e) {
		if p.Name == victim {
			t.Errorf("pod %s is still Ready after its deletion", victim)
		}
	}
}

// lastLine is s's last line: a probe's outcome (the lines before are retries).
func lastLine(s string) string {
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// dbPort is the database URL's port.
func dbPort(t *testing.T, e *env) string {
	t.Helper()
	u, err := url.Parse(e.c.DatabaseURL)
	if err != nil {
		t.Fatal("the database URL does not parse")
	}
	if u.Port() == "" {
		return "5432"
	}
	return u.Port()
}

// databaseAlias makes a headless Service dbAlias in ns whose endpoint is the
// database's address, and a Secret of the same name holding the database
// URL with that name as its host; the test's cleanup removes them.
func databaseAlias(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	u, err := url.Parse(e.c.DatabaseURL)
	if err != nil {
		t.Fatal("the database URL does not parse")
	}
	host, port := u.Hostname(), dbPort(t, e)
	if net.ParseIP(host) == nil {
		t.Fatalf("the database host %q is not an address: the alias needs one", host)
	}
	var portNum int32
	fmt.Sscan(port, &portNum) //nolint:errcheck
	cl := e.c.Client
	cl.CoreV1().Services(ns).Delete(ctx, dbAlias, metav1.DeleteOptions{})            //nolint:errcheck
	cl.DiscoveryV1().EndpointSlices(ns).Delete(ctx, dbAlias, metav1.DeleteOptions{}) //nolint:errcheck
	cl.CoreV1().Secrets(ns).Delete(ctx, dbAlias, metav1.DeleteOptions{})             //nolint:errcheck
	if _, err := cl.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: dbAlias},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone,
			Ports: []corev1.ServicePort{{Name: "postgres", Port: portNum}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: dbAlias, Labels: map[string]string{discoveryv1.LabelServiceName: dbAlias}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{host}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("postgres"), Port: &portNum}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	u.Host = net.JoinHostPort(dbAlias+"."+ns+".svc.cluster.local", port)
	if _, err := cl.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: dbAlias},
		StringData: map[string]string{"DATABASE_URL": u.String()},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		cl.CoreV1().Services(ns).Delete(ctx, dbAlias, metav1.DeleteOptions{})            //nolint:errcheck
		cl.DiscoveryV1().EndpointSlices(ns).Delete(ctx, dbAlias, metav1.DeleteOptions{}) //nolint:errcheck
		cl.CoreV1().Secrets(ns).Delete(ctx, dbAlias, metav1.DeleteOptions{})             //nolint:errcheck
	})
}
