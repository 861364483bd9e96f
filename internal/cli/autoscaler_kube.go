//go:build kube

package cli

import (
	"errors"
	"fmt"
	"log/slog"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/glimpse-oss/glimpse/internal/autoscale/kube"
)

// kubeBuilt says this binary can scale a Kubernetes Deployment.
const kubeBuilt = true

// newKubeActuator connects to the API server — with --kubeconfig, else the
// in-cluster service account, else $KUBECONFIG or ~/.kube/config — and
// returns the actuator for the worker Deployment and a line describing it.
func newKubeActuator(k kubeFlags, log *slog.Logger) (*kube.Actuator, string, error) {
	if k.deployment == "" {
		return nil, "", errors.New("--deployment is required with --actuator kube")
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.kubeconfig
	loaded := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	var (
		cfg *rest.Config
		err error
		how string
	)
	if k.kubeconfig == "" {
		cfg, err = rest.InClusterConfig()
		how = "in-cluster"
	}
	if k.kubeconfig != "" || errors.Is(err, rest.ErrNotInCluster) {
		cfg, err = loaded.ClientConfig()
		how = "kubeconfig"
	}
	if err != nil {
		return nil, "", fmt.Errorf("--actuator kube: %s config: %w", how, err)
	}
	cfg.UserAgent = "glimpse-autoscaler/" + version
	ns := k.namespace
	if ns == "" {
		// The pod's namespace in a cluster, else the kubeconfig context's.
		if ns, _, err = loaded.Namespace(); err != nil || ns == "" {
			ns = "default"
		}
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("--actuator kube: %w", err)
	}
	a, err := kube.New(cs, kube.Config{Namespace: ns, Deployment: k.deployment, Logger: log})
	if err != nil {
		return nil, "", err
	}
	return a, fmt.Sprintf("deployment %s/%s at %s (%s)", ns, k.deployment, cfg.Host, how), nil
}
