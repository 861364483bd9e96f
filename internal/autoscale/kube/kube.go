// Package kube is the autoscale actuator that scales a worker Deployment on
// Kubernetes through its scale subresource, as the HPA and KEDA do.
//
// Scaling in lowers spec.replicas; the Deployment controller deletes pods,
// the kubelet sends each one SIGTERM, and `glimpse worker` drains: it takes no
// new job and finishes or releases the one it holds. Give the pod spec a
// terminationGracePeriodSeconds longer than the worker's --drain-timeout, or
// the kubelet kills a job mid-way (the queue then redelivers it).
//
// The autoscaler's service account needs get on deployments and get and
// update on deployments/scale in the Deployment's namespace.
//
// client-go is large: the glimpse binary links this package only when built
// with -tags kube.
package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/glimpse-oss/glimpse/internal/autoscale"
)

var _ autoscale.Actuator = (*Actuator)(nil)

// Config names the Deployment to scale.
type Config struct {
	Namespace  string
	Deployment string
	Logger     *slog.Logger
}

// Actuator scales one Deployment. It holds no state of its own: every call
// reads the Deployment, so several autoscalers (or a person with kubectl)
// see the same truth. It is safe for concurrent use.
type Actuator struct {
	client kubernetes.Interface
	cfg    Config
	log    *slog.Logger
}

// New returns an actuator for cfg.Deployment in cfg.Namespace. It does not
// contact the API server; the first Current or Scale does.
func New(client kubernetes.Interface, cfg Config) (*Actuator, error) {
	if client == nil {
		return nil, errors.New("kube: a clientset is required")
	}
	if cfg.Namespace == "" || cfg.Deployment == "" {
		return nil, errors.New("kube: a namespace and a deployment are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Actuator{client: client, cfg: cfg, log: cfg.Logger}, nil
}

// Scale sets the Deployment's replicas to n through the scale subresource.
// It reads the current scale first and writes only a change; a write that
// races another one (a conflict) is retried on a fresh read.
func (a *Actuator) Scale(ctx context.Context, n int) error {
	if n < 0 {
		return fmt.Errorf("kube: scale to %d: want 0 or more", n)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	deps := a.client.AppsV1().Deployments(a.cfg.Namespace)
	var from int32
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := deps.GetScale(ctx, a.cfg.Deployment, metav1.GetOptions{})
		if err != nil {
			return err
		}
		from = s.Spec.Replicas
		if int(s.Spec.Replicas) == n {
			return nil
		}
		want := &autoscalingv1.Scale{
			ObjectMeta: s.ObjectMeta, // carries resourceVersion: a racing write conflicts
			Spec:       autoscalingv1.ScaleSpec{Replicas: int32(n)},
		}
		_, err = deps.UpdateScale(ctx, a.cfg.Deployment, want, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("kube: scale deployment %s/%s to %d: %w", a.cfg.Namespace, a.cfg.Deployment, n, err)
	}
	if int(from) != n {
		a.log.Info("deployment scaled", "namespace", a.cfg.Namespace, "deployment", a.cfg.Deployment, "from", from, "to", n)
	}
	return nil
}

// Current reports the Deployment's spec.replicas as running and its
// status.readyReplicas as ready. While it scales in, pods still draining may
// count as ready; ready is capped at running so that it never claims more
// workers than were asked for.
func (a *Actuator) Current(ctx context.Context) (running, ready int, err error) {
	d, err := a.client.AppsV1().Deployments(a.cfg.Namespace).Get(ctx, a.cfg.Deployment, metav1.GetOptions{})
	if err != nil {
		return 0, 0, fmt.Errorf("kube: read deployment %s/%s: %w", a.cfg.Namespace, a.cfg.Deployment, err)
	}
	running = 1 // the API server's default for an unset spec.replicas
	if d.Spec.Replicas != nil {
		running = int(*d.Spec.Replicas)
	}
	ready = min(int(d.Status.ReadyReplicas), running)
	return running, max(ready, 0), nil
}
