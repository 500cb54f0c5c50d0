package suite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// waitDeploymentReady waits until the Deployment's rollout is complete with
// want replicas, all updated and Ready, and no old pod left in its count.
// When it is not, the error says the last status seen and, for each of the
// Deployment's pods, where it runs, its state and why it is not Ready (the
// unready ones' last log lines): what a failed run needs explained, taken
// at the moment it failed rather than at the suite's end.
func waitDeploymentReady(ctx context.Context, cl kubernetes.Interface, ns, name string, want int32, timeout time.Duration) error {
	// The last status read says more than the last error, which near the
	// end is the poll's own deadline.
	var last, lastErr string
	err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		d, err := cl.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			lastErr = err.Error()
			return false, nil
		}
		s := d.Status
		last = fmt.Sprintf("generation %d observed %d, replicas %d updated %d ready %d available %d",
			d.Generation, s.ObservedGeneration, s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas)
		return s.ObservedGeneration >= d.Generation && s.Replicas == want && s.UpdatedReplicas == want &&
			s.ReadyReplicas == want && s.AvailableReplicas == want, nil
	})
	if err != nil {
		if last == "" {
			last = "no status read: " + lastErr
		}
		return fmt.Errorf("deployment %s/%s not ready with %d replicas after %s: %s%s", ns, name, want, timeout, last,
			deploymentPods(cl, ns, name))
	}
	return nil
}

// deploymentPods describes the Deployment's pods, one line each, with the
// last log lines of those not Ready; "" when they cannot be listed.
func deploymentPods(cl kubernetes.Interface, ns, name string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := cl.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil || d.Spec.Selector == nil {
		return ""
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return ""
	}
	pods, err := cl.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return "\n  pods: " + err.Error()
	}
	var b strings.Builder
	for i := range pods.Items {
		p := &pods.Items[i]
		fmt.Fprintf(&b, "\n  pod %s on %s (IP %s): %s, ready %v", p.Name, p.Spec.NodeName, p.Status.PodIP, p.Status.Phase, podReady(p))
		if p.DeletionTimestamp != nil {
			b.WriteString(", terminating")
		}
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue && c.Message != "" {
				fmt.Fprintf(&b, "; %s: %s", c.Type, c.Message)
			}
		}
		for _, c := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, "; %s restarts %d", c.Name, c.RestartCount)
			if w := c.State.Waiting; w != nil {
				fmt.Fprintf(&b, " waiting %s %s", w.Reason, w.Message)
			}
			if x := c.LastTerminationState.Terminated; x != nil {
				fmt.Fprintf(&b, " (last exit %d %s)", x.ExitCode, x.Reason)
			}
		}
		if podReady(p) || p.Status.Phase != corev1.PodRunning {
			continue
		}
		ev, err := cl.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + p.Name})
		if err == nil {
			for _, x := range ev.Items {
				if x.Type != corev1.EventTypeNormal {
					fmt.Fprintf(&b, "\n    event %s %s ×%d: %s", x.LastTimestamp.Format(time.TimeOnly), x.Reason, x.Count, x.Message)
				}
			}
		}
		lines := int64(8)
		lg, err := cl.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &lines}).DoRaw(ctx)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			fmt.Fprintf(&b, "\n    logs: %v", err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(lg)), "\n") {
			if l != "" {
				fmt.Fprintf(&b, "\n    | %s", l)
			}
		}
	}
	return b.String()
}

// podReady says whether the pod's Ready condition is true.
func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
