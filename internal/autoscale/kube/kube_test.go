package kube

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/glimpse-oss/glimpse/internal/autoscale"
	"github.com/glimpse-oss/glimpse/internal/autoscale/actuatortest"
)

const (
	testNS     = "glimpse"
	testDeploy = "glimpse-worker"
)

var deploymentsGVR = appsv1.SchemeGroupVersion.WithResource("deployments")

// cluster is client-go's fake clientset taught the deployments/scale
// subresource (the fake's object tracker does not know it): GetScale reads
// the Deployment, UpdateScale writes its spec.replicas, and both honour
// resourceVersion the way the API server does, so a stale write conflicts.
// Nothing makes pods: settle plays the Deployment controller.
type cluster struct {
	cs *fake.Clientset

	mu        sync.Mutex
	conflicts int // UpdateScale calls still to answer with a conflict
	updates   int // UpdateScale calls seen
}

func newCluster(t *testing.T, d *appsv1.Deployment) *cluster {
	t.Helper()
	var objs []runtime.Object
	if d != nil {
		d.ResourceVersion = "1"
		objs = append(objs, d)
	}
	c := &cluster{cs: fake.NewClientset(objs...)}
	c.cs.PrependReactor("get", "deployments", c.getScale)
	c.cs.PrependReactor("update", "deployments", c.updateScale)
	return c
}

func deployment(replicas *int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: testDeploy, Generation: 1},
		Spec: appsv1.DeploymentSpec{
			Replicas: replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "glimpse-worker"}},
		},
	}
}

func ptr(n int32) *int32 { return &n }

func (c *cluster) deployment(ns, name string) (*appsv1.Deployment, error) {
	obj, err := c.cs.Tracker().Get(deploymentsGVR, ns, name)
	if err != nil {
		return nil, err
	}
	return obj.(*appsv1.Deployment).DeepCopy(), nil
}

// put stores d with the next resourceVersion.
func (c *cluster) put(d *appsv1.Deployment) error {
	rv, _ := strconv.Atoi(d.ResourceVersion)
	d.ResourceVersion = strconv.Itoa(rv + 1)
	return c.cs.Tracker().Update(deploymentsGVR, d, d.Namespace)
}

func scaleOf(d *appsv1.Deployment) *autoscalingv1.Scale {
	s := &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, Name: d.Name, ResourceVersion: d.ResourceVersion},
		Status:     autoscalingv1.ScaleStatus{Replicas: d.Status.Replicas, Selector: "app=glimpse-worker"},
	}
	s.Spec.Replicas = 1
	if d.Spec.Replicas != nil {
		s.Spec.Replicas = *d.Spec.Replicas
	}
	return s
}

func (c *cluster) getScale(action k8stesting.Action) (bool, runtime.Object, error) {
	if action.GetSubresource() != "scale" {
		return false, nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.deployment(action.GetNamespace(), action.(k8stesting.GetAction).GetName())
	if err != nil {
		return true, nil, err
	}
	return true, scaleOf(d), nil
}

func (c *cluster) updateScale(action k8stesting.Action) (bool, runtime.Object, error) {
	if action.GetSubresource() != "scale" {
		return false, nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.updates++
	s := action.(k8stesting.UpdateAction).GetObject().(*autoscalingv1.Scale)
	d, err := c.deployment(action.GetNamespace(), s.Name)
	if err != nil {
		return true, nil, err
	}
	if c.conflicts > 0 {
		// Someone else wrote first: the stored object moves on.
		c.conflicts--
		if err := c.put(d); err != nil {
			return true, nil, err
		}
	}
	if s.ResourceVersion != "" && s.ResourceVersion != d.ResourceVersion {
		return true, nil, apierrors.NewConflict(deploymentsGVR.GroupResource(), s.Name,
			errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	}
	d.Spec.Replicas = ptr(s.Spec.Replicas)
	d.Generation++
	if err := c.put(d); err != nil {
		return true, nil, err
	}
	return true, scaleOf(d), nil
}

// settle plays the Deployment controller and kubelet: every pod asked for
// is up and ready, the rest are gone.
func (c *cluster) settle(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.deployment(testNS, testDeploy)
	if err != nil {
		t.Fatal(err)
	}
	n := int32(1)
	if d.Spec.Replicas != nil {
		n = *d.Spec.Replicas
	}
	d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
	if err := c.put(d); err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) setStatus(t *testing.T, ready int32) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	d, err := c.deployment(testNS, testDeploy)
	if err != nil {
		t.Fatal(err)
	}
	d.Status.Replicas, d.Status.ReadyReplicas = ready, ready
	if err := c.put(d); err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) actuator(t *testing.T) *Actuator {
	t.Helper()
	a, err := New(c.cs, Config{Namespace: testNS, Deployment: testDeploy})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestConformance(t *testing.T) {
	clusters := map[autoscale.Actuator]*cluster{}
	var mu sync.Mutex
	actuatortest.RunConformanceTests(t, actuatortest.Harness{
		New: func(t *testing.T) autoscale.Actuator {
			c := newCluster(t, deployment(ptr(0)))
			a := c.actuator(t)
			mu.Lock()
			clusters[a] = c
			mu.Unlock()
			return a
		},
		Settle: func(t *testing.T, a autoscale.Actuator) {
			mu.Lock()
			c := clusters[a]
			mu.Unlock()
			c.settle(t)
		},
	})
}

func TestReadyLagsUntilPodsAreReady(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, deployment(ptr(1)))
	c.settle(t)
	a := c.actuator(t)
	if err := a.Scale(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if running, ready, err := a.Current(ctx); err != nil || running != 4 || ready != 1 {
		t.Errorf("Current() before the pods start = %d, %d, %v; want 4, 1, nil", running, ready, err)
	}
	c.setStatus(t, 3)
	if running, ready, _ := a.Current(ctx); running != 4 || ready != 3 {
		t.Errorf("Current() with 3 pods ready = %d, %d; want 4, 3", running, ready)
	}
}

// While pods drain after a scale-in the Deployment may still count them as
// ready; Current never reports more ready than asked for.
func TestReadyCappedWhileDraining(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, deployment(ptr(5)))
	c.settle(t)
	a := c.actuator(t)
	if err := a.Scale(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if running, ready, _ := a.Current(ctx); running != 2 || ready != 2 {
		t.Errorf("Current() while 3 pods drain = %d, %d; want 2, 2", running, ready)
	}
}

func TestScaleRetriesAConflict(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, deployment(ptr(1)))
	c.conflicts = 2
	a := c.actuator(t)
	if err := a.Scale(ctx, 3); err != nil {
		t.Fatalf("Scale(3) with 2 racing writes: %v", err)
	}
	if c.updates != 3 {
		t.Errorf("UpdateScale called %d times; want 3 (two conflicts, one success)", c.updates)
	}
	if running, _, _ := a.Current(ctx); running != 3 {
		t.Errorf("running = %d; want 3", running)
	}
}

func TestScaleToCurrentWritesNothing(t *testing.T) {
	ctx := context.Background()
	c := newCluster(t, deployment(ptr(2)))
	a := c.actuator(t)
	if err := a.Scale(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if c.updates != 0 {
		t.Errorf("UpdateScale called %d times for no change; want 0", c.updates)
	}
}

func TestUnsetReplicasMeansOne(t *testing.T) {
	c := newCluster(t, deployment(nil))
	if running, _, err := c.actuator(t).Current(context.Background()); err != nil || running != 1 {
		t.Errorf("Current() with spec.replicas unset = %d, %v; want 1 (the API default)", running, err)
	}
}

func TestMissingDeployment(t *testing.T) {
	ctx := context.Background()
	a := newCluster(t, nil).actuator(t)
	if _, _, err := a.Current(ctx); !apierrors.IsNotFound(err) {
		t.Errorf("Current() on a missing deployment = %v; want a NotFound error", err)
	}
	if err := a.Scale(ctx, 1); !apierrors.IsNotFound(err) {
		t.Errorf("Scale(1) on a missing deployment = %v; want a NotFound error", err)
	}
}

func TestNewNeedsNames(t *testing.T) {
	cs := fake.NewClientset()
	for _, cfg := range []Config{{}, {Namespace: testNS}, {Deployment: testDeploy}} {
		if _, err := New(cs, cfg); err == nil {
			t.Errorf("New(%+v) = nil error; want one", cfg)
		}
	}
	if _, err := New(nil, Config{Namespace: testNS, Deployment: testDeploy}); err == nil {
		t.Error("New(nil clientset) = nil error; want one")
	}
}
