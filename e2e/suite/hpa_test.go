package suite

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// kindValues are the CI-only values of the hpa step (a low CPU target, short
// stabilization windows).
const kindValues = "e2e/suite/ci/kind-values.yaml"

// testHPA: with kindValues, the load test drives the Deployment past its
// minimum (the HPA reads the pods' CPU from metrics-server) and, once the
// load stops, back down to it; a steady trickle of calls runs throughout and
// not one call of either load fails while pods come and go.
func testHPA(t *testing.T, e *env) {
	if e.c.Provider != "kind" {
		t.Skipf("the %s cluster has no metrics-server, so the HPA cannot read CPU: the kind provider checks autoscaling", e.c.Provider)
	}
	ctx := context.Background()
	cl := e.c.Client
	const minReplicas = 3
	if err := waitDeploymentReady(ctx, cl, ns, release, minReplicas, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	opts := e.helmOptions(nil)
	opts.ValuesFiles = append(opts.ValuesFiles, filepath.Join(e.root, kindValues))
	if out, err := e.helm(t, opts, "upgrade", release, e.chart, "--timeout", "3m"); err != nil {
		t.Fatalf("helm upgrade -f %s: %v\n%s", kindValues, err, out)
	}
	t.Cleanup(func() {
		// The chart's own autoscaling for the later steps (no rollout: the
		// pod template does not change).
		if out, err := e.helm(t, e.helmOptions(nil), "upgrade", release, e.chart, "--timeout", "3m"); err != nil {
			t.Errorf("helm upgrade back to the chart's autoscaling: %v\n%s", err, out)
		}
	})

	// metrics-server must report the pods' CPU, and the HPA must read it,
	// before the load means anything.
	hpas := cl.AutoscalingV2().HorizontalPodAutoscalers(ns)
	var last string
	err := wait.PollUntilContextTimeout(ctx, 3*time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n, err := podMetrics(pctx, e)
		if err != nil {
			last = "pod metrics: " + err.Error()
			return false, nil
		}
		h, err := hpas.Get(pctx, release, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("metrics for %d service pods; HPA %s", n, hpaState(h))
		return n >= minReplicas && cpuUtilization(h) != nil && hpaCondition(h, autoscalingv2.ScalingActive), nil
	})
	if err != nil {
		t.Fatalf("the HPA never read the pods' CPU in 3m: %s", last)
	}
	t.Logf("before the load: %s", last)

	dataset := loadDataset(t, e, 300)
	// Measured here: scaled past the minimum 10-45 s into the load (the
	// metrics lag by up to a resolution period and a sync), back to it
	// 60-75 s after; the steady load covers both with a margin.
	const heavyFor, steadyFor = 90 * time.Second, 220 * time.Second
	steady := startLoadtest(t, e, "e2e-hpa-steady", dataset, 20, 4, 2, steadyFor)
	steadyStart := time.Now()
	heavy := startLoadtest(t, e, "e2e-hpa-load", dataset, 400, 32, 8, heavyFor)
	heavyStart := time.Now()

	// Up: more pods than the minimum, Ready, while the load runs.
	peak, peakReady := int32(0), int32(0)
	var up time.Duration
	var readyAtUp int32
	lastLog := time.Time{}
	wait.PollUntilContextTimeout(ctx, 2*time.Second, heavyFor, true, func(ctx context.Context) (bool, error) { //nolint:errcheck
		d, err := cl.AppsV1().Deployments(ns).Get(ctx, release, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		peak, peakReady = max(peak, ptr.Deref(d.Spec.Replicas, 0)), max(peakReady, d.Status.ReadyReplicas)
		if h, err := hpas.Get(ctx, release, metav1.GetOptions{}); err == nil && time.Since(lastLog) >= 10*time.Second {
			t.Logf("%3.0fs into the load: deployment %d replicas, %d Ready; HPA %s", time.Since(heavyStart).Seconds(),
				ptr.Deref(d.Spec.Replicas, 0), d.Status.ReadyReplicas, hpaState(h))
			lastLog = time.Now()
		}
		if d.Status.ReadyReplicas > minReplicas && up == 0 {
			up, readyAtUp = time.Since(heavyStart), d.Status.ReadyReplicas
		}
		return false, nil
	})
	if up == 0 {
		t.Errorf("under load the Deployment did not scale past its minimum of %d with Ready pods (most replicas %d, most Ready %d)", minReplicas, peak, peakReady)
	} else {
		t.Logf("scaled up: %d Ready pods %s after the load began (at most %d replicas, %d Ready)", readyAtUp, up.Round(time.Second), peak, peakReady)
	}
	finishLoadtest(t, e, heavy.Name, time.Minute, "hpa", "the scale-up")

	// Down: back to the minimum once the load has stopped.
	downStart := time.Now()
	err = wait.PollUntilContextTimeout(ctx, 2*time.Second, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err := cl.AppsV1().Deployments(ns).Get(ctx, release, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = fmt.Sprintf("%d replicas, %d Ready", ptr.Deref(d.Spec.Replicas, 0), d.Status.ReadyReplicas)
		if h, err := hpas.Get(ctx, release, metav1.GetOptions{}); err == nil {
			last += "; HPA " + hpaState(h)
		}
		pods, err := cl.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: serverSelector})
		if err != nil {
			return false, nil
		}
		return ptr.Deref(d.Spec.Replicas, 0) == minReplicas && d.Status.ReadyReplicas == minReplicas && len(pods.Items) == minReplicas, nil
	})
	if err != nil {
		t.Errorf("after the load the Deployment did not scale back to %d in 4m: %s", minReplicas, last)
	} else {
		t.Logf("scaled down to %d pods %s after the load stopped", minReplicas, time.Since(downStart).Round(time.Second))
	}
	if up > 0 && time.Since(steadyStart) > steadyFor {
		t.Errorf("the steady load (%s) ended before the scale-down did: raise steadyFor", steadyFor)
	}
	finishLoadtest(t, e, steady.Name, steadyFor+time.Minute, "hpa", "the scale-up and scale-down")
}

// podMetrics returns how many service pods the resource metrics API reports.
func podMetrics(ctx context.Context, e *env) (int, error) {
	raw, err := e.c.Client.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces", ns, "pods").
		Param("labelSelector", serverSelector).DoRaw(ctx)
	if err != nil {
		return 0, err
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return 0, err
	}
	return len(list.Items), nil
}

// cpuUtilization is the HPA's current average CPU utilization, nil if unread.
func cpuUtilization(h *autoscalingv2.HorizontalPodAutoscaler) *int32 {
	for _, m := range h.Status.CurrentMetrics {
		if m.Resource != nil && m.Resource.Name == corev1.ResourceCPU {
			return m.Resource.Current.AverageUtilization
		}
	}
	return nil
}

func hpaCondition(h *autoscalingv2.HorizontalPodAutoscaler, c autoscalingv2.HorizontalPodAutoscalerConditionType) bool {
	for _, x := range h.Status.Conditions {
		if x.Type == c {
			return x.Status == corev1.ConditionTrue
		}
	}
	return false
}

// hpaState says what the HPA sees and wants, for logs and failures.
func hpaState(h *autoscalingv2.HorizontalPodAutoscaler) string {
	cpu := "unknown"
	if u := cpuUtilization(h); u != nil {
		cpu = fmt.Sprintf("%d%%", *u)
	}
	target := int32(0)
	for _, m := range h.Spec.Metrics {
		if m.Resource != nil && m.Resource.Name == corev1.ResourceCPU {
			target = ptr.Deref(m.Resource.Target.AverageUtilization, 0)
		}
	}
	s := fmt.Sprintf("cpu %s of target %d%%, current %d desired %d", cpu, target, h.Status.CurrentReplicas, h.Status.DesiredReplicas)
	for _, x := range h.Status.Conditions {
		if x.Status != corev1.ConditionTrue {
			s += fmt.Sprintf("; %s=%s (%s: %.200s)", x.Type, x.Status, x.Reason, x.Message)
		}
	}
	return s
}
