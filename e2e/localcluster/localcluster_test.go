package localcluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/utils/ptr"

	"github.com/nova-auth/nova-auth/e2e/localcluster"
	"github.com/nova-auth/nova-auth/e2e/ociimage"
)

const helloImage = "localhost/nova-auth/hello:1"

// TestLocalCluster brings a cluster up, runs a tiny workload under the
// "restricted" Pod Security level, reads its logs, execs in it, port-forwards
// to it and reaches it through a ClusterIP Service from another pod, by IP
// and by name, then
// brings the cluster down and checks the host is as it was.
func TestLocalCluster(t *testing.T) {
	if err := localcluster.Check(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	opts := localcluster.Options{Log: testWriter{t}, ArtifactsDir: os.Getenv("LOCALCLUSTER_ARTIFACTS")}
	// Build first, so that the start time below is a warm start.
	buildStart := time.Now()
	if _, err := localcluster.BuildComponents(ctx, localcluster.DefaultCacheDir(), testWriter{t}); err != nil {
		t.Fatal(err)
	}
	t.Logf("binaries ready in %s (cold build or cache)", time.Since(buildStart).Round(100*time.Millisecond))

	start := time.Now()
	c, err := localcluster.Up(ctx, opts)
	if errors.Is(err, localcluster.ErrRunning) {
		t.Fatalf("%v: this test needs the host to itself (make cluster-down)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster up in %s (binaries cached)", time.Since(start).Round(100*time.Millisecond))
	downed := false
	defer func() {
		if !downed {
			c.Down(context.Background())
		}
	}()

	tar := filepath.Join(t.TempDir(), "hello.tar")
	buildHelloImage(t, ctx, tar)
	if err := c.LoadImage(ctx, tar); err != nil {
		t.Fatal(err)
	}

	cfg, err := c.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cfg)
	ns := "hello"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   ns,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// The restricted level refuses a pod that does not drop everything.
	bad := helloPod("bad", []string{"/hello"})
	bad.Spec.Containers[0].SecurityContext.Capabilities = nil
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, bad, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "restricted") {
		t.Fatalf("pod violating restricted: got err %v, want a PodSecurity refusal", err)
	}

	deployStart := time.Now()
	labels := map[string]string{"app": "hello"}
	tmpl := helloPod("", []string{"/hello"})
	tmpl.Labels = labels
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "hello"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods := waitReadyPods(t, ctx, cs, ns, "app=hello", 2)
	t.Logf("deployment: 2 pods Ready in %s", time.Since(deployStart).Round(100*time.Millisecond))
	pod := pods[0]

	t.Run("logs", func(t *testing.T) {
		b, err := cs.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "hello listening on :8080") {
			t.Fatalf("logs = %q", b)
		}
	})

	t.Run("exec", func(t *testing.T) {
		out, err := execIn(ctx, cfg, cs, ns, pod, []string{"/hello", "-get", "http://127.0.0.1:8080/"})
		if err != nil {
			t.Fatal(err)
		}
		if want := "hello from " + pod; !strings.Contains(out, want) {
			t.Fatalf("exec output %q, want %q", out, want)
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		body := portForwardGet(t, ctx, cfg, ns, pod, 8080)
		if want := "hello from " + pod; !strings.Contains(body, want) {
			t.Fatalf("port-forward body %q, want %q", body, want)
		}
	})

	// A second pod reaches the Deployment through the Service: by ClusterIP
	// (kube-proxy), and by name (CoreDNS on the bridge gateway).
	for name, url := range map[string]string{
		"service": "http://" + svc.Spec.ClusterIP + "/",
		"dns":     "http://hello." + ns + ".svc.cluster.local/",
	} {
		t.Run(name, func(t *testing.T) {
			client := helloPod("client-"+name, []string{"/hello", "-retry-for=30s", "-get", url})
			client.Spec.RestartPolicy = corev1.RestartPolicyNever
			if _, err := cs.CoreV1().Pods(ns).Create(ctx, client, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			phase := waitPodDone(t, ctx, cs, ns, client.Name)
			b, _ := cs.CoreV1().Pods(ns).GetLogs(client.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
			if phase != corev1.PodSucceeded || !strings.Contains(string(b), "hello from hello-") {
				t.Fatalf("client pod %s, output %q; want Succeeded and a reply from a hello pod", phase, b)
			}
		})
	}

	// The gateway's MAC address stays what it was when every pod behind it
	// is replaced (a bridge takes its lowest port's MAC unless given one,
	// and pods keep sending to the old one until their ARP entry expires).
	t.Run("gateway-mac", func(t *testing.T) {
		before := gatewayMAC(t, c.GatewayIP)
		if err := cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "app=hello"}); err != nil {
			t.Fatal(err)
		}
		waitNoPods(t, ctx, cs, ns, pods)
		waitReadyPods(t, ctx, cs, ns, "app=hello", 2)
		if after := gatewayMAC(t, c.GatewayIP); after != before {
			t.Errorf("the gateway's MAC address changed from %s to %s when the pods were replaced", before, after)
		}
	})

	downStart := time.Now()
	downed = true
	if err := c.Down(context.Background()); err != nil {
		t.Fatalf("Down: %v", err)
	}
	t.Logf("cluster down in %s", time.Since(downStart).Round(100*time.Millisecond))
	if diff := c.HostBefore.Diff(localcluster.SnapshotHost(c.Dir)); len(diff) > 0 {
		t.Errorf("host not clean after Down:\n%s", strings.Join(diff, "\n"))
	}
}

// gatewayMAC is the MAC address of the host interface holding gateway.
func gatewayMAC(t *testing.T, gateway string) string {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.String() == gateway {
				return i.HardwareAddr.String()
			}
		}
	}
	t.Fatalf("no interface holds the gateway %s", gateway)
	return ""
}

// waitNoPods waits until the given pods are gone.
func waitNoPods(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns string, pods []string) {
	t.Helper()
	for _, p := range pods {
		err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			_, err := cs.CoreV1().Pods(ns).Get(ctx, p, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		if err != nil {
			t.Fatalf("pod %s still there after 2 minutes", p)
		}
	}
}

// buildHelloImage builds testdata/hello as a static binary on an empty base,
// non-root.
func buildHelloImage(t *testing.T, ctx context.Context, tar string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hello")
	if err := ociimage.GoBuild(ctx, ".", "./testdata/hello", bin); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ociimage.Build(ociimage.Config{Entrypoint: []string{"/hello"}, User: "65532:65532"},
		ociimage.File{Path: "/hello", Mode: 0o755, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if err := ociimage.WriteTarball(tar, helloImage, img); err != nil {
		t.Fatal(err)
	}
}

// helloPod is a pod of the hello image that passes the "restricted" level.
func helloPod(name string, command []string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "hello",
				Image:           helloImage,
				ImagePullPolicy: corev1.PullNever,
				Command:         command,
				Ports:           []corev1.ContainerPort{{ContainerPort: 8080}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
					HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)},
				}, PeriodSeconds: 1},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
}

func waitReadyPods(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns, selector string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err == nil {
			var ready []string
			for _, p := range list.Items {
				for _, c := range p.Status.Conditions {
					if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
						ready = append(ready, p.Name)
					}
				}
			}
			if len(ready) >= n {
				return ready
			}
		}
		select {
		case <-ctx.Done():
			dumpPods(t, cs, ns)
			t.Fatalf("waiting for %d Ready pods %s: %v", n, selector, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func waitPodDone(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns, name string) corev1.PodPhase {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
			return p.Status.Phase
		}
		select {
		case <-ctx.Done():
			dumpPods(t, cs, ns)
			t.Fatalf("waiting for pod %s to finish: %v", name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func dumpPods(t *testing.T, cs kubernetes.Interface, ns string) {
	list, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, p := range list.Items {
		t.Logf("pod %s: phase %s conditions %+v containers %+v", p.Name, p.Status.Phase, p.Status.Conditions, p.Status.ContainerStatuses)
	}
	ev, _ := cs.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	for _, e := range ev.Items {
		t.Logf("event %s %s: %s", e.InvolvedObject.Name, e.Reason, e.Message)
	}
}

func execIn(ctx context.Context, cfg *rest.Config, cs kubernetes.Interface, ns, pod string, cmd []string) (string, error) {
	req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		return "", fmt.Errorf("exec: %w (stderr %q)", err, stderr.String())
	}
	return stdout.String(), nil
}

// portForwardGet forwards a loopback port to the pod's port and GETs / there.
func portForwardGet(t *testing.T, ctx context.Context, cfg *rest.Config, ns, pod string, port int) string {
	t.Helper()
	rt, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	u := kubernetes.NewForConfigOrDie(cfg).CoreV1().RESTClient().Post().
		Resource("pods").Namespace(ns).Name(pod).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, "POST", u)
	stop, ready := make(chan struct{}), make(chan struct{})
	defer close(stop)
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{fmt.Sprintf("0:%d", port)}, stop, ready, io.Discard, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("port-forward: %v", err)
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	ports, err := fw.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/", ports[0].Local))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
