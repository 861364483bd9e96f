//go:build !kube

package cli

import (
	"errors"
	"log/slog"

	"github.com/glimpse-oss/glimpse/internal/autoscale"
)

// kubeBuilt says this binary can scale a Kubernetes Deployment: client-go
// adds about a minute of build time and 36 MB, so only -tags kube links it.
const kubeBuilt = false

var errNoKube = errors.New("--actuator kube: this glimpse was built without Kubernetes support; " +
	"build one with it: go build -tags kube,turbojpeg -o glimpse ./cmd/glimpse")

func newKubeActuator(kubeFlags, *slog.Logger) (autoscale.Actuator, string, error) {
	return nil, "", errNoKube
}
