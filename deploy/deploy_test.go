package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/glimpse-oss/glimpse/internal/cli"
	"github.com/glimpse-oss/glimpse/internal/models"
	"github.com/glimpse-oss/glimpse/internal/queue"
)

// --- glimpse's own flags -------------------------------------------------------------------------

var (
	helpMu    sync.Mutex
	helpCache = map[string]map[string]bool{}
	flagLine  = regexp.MustCompile(`^\s+(?:-\w, )?--([a-z0-9][a-z0-9-]*)`)
)

// flagsOf returns the flags `glimpse <path> --help` lists, global ones included.
func flagsOf(t *testing.T, path ...string) map[string]bool {
	t.Helper()
	helpMu.Lock()
	defer helpMu.Unlock()
	k := strings.Join(path, " ")
	if f, ok := helpCache[k]; ok {
		return f
	}
	var out, errb bytes.Buffer
	if code := cli.Main(context.Background(), append(slices.Clone(path), "--help"), &out, &errb); code != 0 {
		t.Fatalf("glimpse %s --help exited %d: %s", k, code, errb.String())
	}
	f := map[string]bool{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if m := flagLine.FindStringSubmatch(sc.Text()); m != nil {
			f[m[1]] = true
		}
	}
	if len(f) == 0 || !f["help"] {
		t.Fatalf("glimpse %s --help lists no flags:\n%s", k, out.String())
	}
	helpCache[k] = f
	return f
}

// invocation is one glimpse command line: its subcommand path and flags.
type invocation struct {
	path  []string
	flags map[string]string // name → value ("" for a bare boolean)
}

// parseArgs splits args (after the binary) into subcommands and flags.
// Flags take the next argument as value unless it starts with "-" or the
// flag is written --name=value.
func parseArgs(args []string) invocation {
	inv := invocation{flags: map[string]string{}}
	i := 0
	for ; i < len(args) && !strings.HasPrefix(args[i], "-"); i++ {
		inv.path = append(inv.path, args[i])
	}
	for ; i < len(args); i++ {
		name := strings.TrimLeft(args[i], "-")
		if n, v, ok := strings.Cut(name, "="); ok {
			inv.flags[n] = v
			continue
		}
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			inv.flags[name] = args[i+1]
			i++
		} else {
			inv.flags[name] = ""
		}
	}
	return inv
}

// envFlag maps GLIMPSE_MAX_BYTES to max-bytes; ok is false for other names.
func envFlag(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "GLIMPSE_")
	if !ok {
		return "", false
	}
	return strings.ReplaceAll(strings.ToLower(rest), "_", "-"), true
}

// checkInvocation checks a glimpse command line and the GLIMPSE_* variables its process sees
// against the flags of that subcommand. The autoscaler's environment may also configure the
// workers it starts (they inherit it).
func checkInvocation(t *testing.T, where string, args []string, env []string) invocation {
	t.Helper()
	inv := parseArgs(args)
	if len(inv.path) == 0 {
		t.Errorf("%s: no glimpse subcommand in %q", where, args)
		return inv
	}
	known := flagsOf(t, inv.path...)
	var unknown []string
	for f := range inv.flags {
		if !known[f] {
			unknown = append(unknown, f)
		}
	}
	slices.Sort(unknown)
	for _, f := range unknown {
		t.Errorf("%s: `glimpse %s` has no flag --%s", where, strings.Join(inv.path, " "), f)
	}
	envKnown := known
	if wc, ok := inv.flags["worker-cmd"]; ok {
		fields := strings.Fields(wc)
		if len(fields) == 0 || fields[0] != "glimpse" {
			t.Errorf("%s: --worker-cmd %q does not run glimpse", where, wc)
		} else {
			w := checkInvocation(t, where+" --worker-cmd", fields[1:], nil)
			envKnown = map[string]bool{}
			for f := range known {
				envKnown[f] = true
			}
			for f := range flagsOf(t, w.path...) {
				envKnown[f] = true
			}
		}
	}
	for _, e := range env {
		if f, ok := envFlag(e); ok && !envKnown[f] {
			t.Errorf("%s: environment variable %s is no flag of `glimpse %s` (no --%s)", where, e, strings.Join(inv.path, " "), f)
		}
	}
	return inv
}

// checkEngineURLs checks the queue, blob and database URLs a role is given.
func checkEngineURLs(t *testing.T, where string, vals map[string]string) {
	t.Helper()
	if q := vals["queue"]; q != "" {
		for _, s := range strings.Split(q, ",") {
			if u, err := url.Parse(s); err != nil || u.Scheme != "nats" || u.Port() == "" {
				t.Errorf("%s: queue server %q: want nats://host:port", where, s)
			}
		}
	}
	if b := vals["blob"]; b != "" {
		u, err := url.Parse(b)
		if err != nil || u.Scheme != "s3" || u.Host == "" {
			t.Errorf("%s: blob url %q: want s3://bucket?…", where, b)
		} else {
			for p := range u.Query() {
				if !slices.Contains(s3Params, p) {
					t.Errorf("%s: blob url %q: s3blob rejects the parameter %q", where, b, p)
				}
			}
		}
	}
	if d := vals["db"]; d != "" {
		if u, err := url.Parse(d); err != nil || u.Scheme != "postgres" || u.Host == "" || u.Path == "" {
			t.Errorf("%s: db url %q: want postgres://user:pass@host/db", where, d)
		}
	}
}

// s3Params are the query parameters gocloud.dev v0.47's s3blob accepts.
var s3Params = []string{"region", "endpoint", "use_path_style", "s3ForcePathStyle", "disable_https",
	"hostname_immutable", "profile", "role", "anonymous", "dualstack", "fips", "accelerate",
	"ssetype", "kmskeyid", "rate_limiter_capacity", "request_checksum_calculation",
	"response_checksum_validation", "awssdk"}

// --- Kubernetes --------------------------------------------------------------------------------------

// manifests holds every object of deploy/kubernetes, decoded strictly.
type manifests struct {
	namespaces   []corev1.Namespace
	configMaps   map[string]corev1.ConfigMap
	secrets      map[string]corev1.Secret
	services     []corev1.Service
	deployments  map[string]appsv1.Deployment
	accounts     map[string]corev1.ServiceAccount
	roles        map[string]rbacv1.Role
	bindings     []rbacv1.RoleBinding
	scaledObject []scaledObject
}

// scaledObject is the part of KEDA's keda.sh/v1alpha1 ScaledObject we use.
type scaledObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount int `json:"minReplicaCount"`
		MaxReplicaCount int `json:"maxReplicaCount"`
		PollingInterval int `json:"pollingInterval"`
		CooldownPeriod  int `json:"cooldownPeriod"`
		Triggers        []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// splitDocs splits a multi-document YAML file.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(d, "")) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// strict decodes doc into v, failing on unknown or duplicate fields.
func strict(t *testing.T, where string, doc []byte, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, v); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{
		configMaps: map[string]corev1.ConfigMap{}, secrets: map[string]corev1.Secret{},
		deployments: map[string]appsv1.Deployment{}, accounts: map[string]corev1.ServiceAccount{},
		roles: map[string]rbacv1.Role{},
	}
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	keda, _ := filepath.Glob("kubernetes/keda/*.yaml")
	files = append(files, keda...)
	if len(files) < 6 {
		t.Fatalf("found %d manifest files: %v", len(files), files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocs(b) {
			where := fmt.Sprintf("%s#%d", f, i)
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			switch head.APIVersion + " " + head.Kind {
			case "v1 Namespace":
				var o corev1.Namespace
				strict(t, where, doc, &o)
				m.namespaces = append(m.namespaces, o)
			case "v1 ConfigMap":
				var o corev1.ConfigMap
				strict(t, where, doc, &o)
				m.configMaps[o.Name] = o
			case "v1 Secret":
				var o corev1.Secret
				strict(t, where, doc, &o)
				m.secrets[o.Name] = o
			case "v1 Service":
				var o corev1.Service
				strict(t, where, doc, &o)
				m.services = append(m.services, o)
			case "v1 ServiceAccount":
				var o corev1.ServiceAccount
				strict(t, where, doc, &o)
				m.accounts[o.Name] = o
			case "apps/v1 Deployment":
				var o appsv1.Deployment
				strict(t, where, doc, &o)
				m.deployments[o.Name] = o
			case "rbac.authorization.k8s.io/v1 Role":
				var o rbacv1.Role
				strict(t, where, doc, &o)
				m.roles[o.Name] = o
			case "rbac.authorization.k8s.io/v1 RoleBinding":
				var o rbacv1.RoleBinding
				strict(t, where, doc, &o)
				m.bindings = append(m.bindings, o)
			case "keda.sh/v1alpha1 ScaledObject":
				var o scaledObject
				strict(t, where, doc, &o)
				m.scaledObject = append(m.scaledObject, o)
			default:
				t.Fatalf("%s: unexpected %s %s", where, head.APIVersion, head.Kind)
			}
		}
	}
	return m
}

func TestKubernetes(t *testing.T) {
	m := loadManifests(t)
	if len(m.namespaces) != 1 {
		t.Fatalf("%d namespaces; want 1", len(m.namespaces))
	}
	ns := m.namespaces[0].Name
	inNS := func(what, got string) {
		if got != ns {
			t.Errorf("%s is in namespace %q; want %q", what, got, ns)
		}
	}
	for _, want := range []string{"glimpse-api", "glimpse-worker", "glimpse-autoscaler"} {
		if _, ok := m.deployments[want]; !ok {
			t.Errorf("no Deployment %s", want)
		}
	}

	for name, d := range m.deployments {
		inNS("Deployment "+name, d.Namespace)
		sel := d.Spec.Selector
		if sel == nil || len(sel.MatchLabels) == 0 {
			t.Errorf("Deployment %s: no selector", name)
			continue
		}
		if !subset(sel.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("Deployment %s: selector %v does not match its pod labels %v", name, sel.MatchLabels, d.Spec.Template.Labels)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			where := fmt.Sprintf("Deployment %s container %s", name, c.Name)
			if len(c.Command) != 0 {
				t.Errorf("%s: overrides the image's entrypoint (glimpse) with %q", where, c.Command)
			}
			env, vals := containerEnv(t, m, where, c)
			inv := checkInvocation(t, where, c.Args, env)
			for k, v := range inv.flags {
				vals[k] = v
			}
			checkEngineURLs(t, where, vals)
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
				if p == nil || p.HTTPGet == nil {
					continue
				}
				if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
					return cp.Name == p.HTTPGet.Port.String() || cp.ContainerPort == p.HTTPGet.Port.IntVal
				}) {
					t.Errorf("%s: probe port %s is not a container port", where, p.HTTPGet.Port.String())
				}
			}
			for _, cp := range c.Ports {
				addr := inv.flags["addr"] + inv.flags["metrics-addr"]
				if !strings.HasSuffix(addr, fmt.Sprintf(":%d", cp.ContainerPort)) {
					t.Errorf("%s: port %d is not where it listens (%q)", where, cp.ContainerPort, addr)
				}
			}
		}
	}

	// The api Service reaches the api pods, on a port they expose.
	var apiSvc *corev1.Service
	for i, s := range m.services {
		inNS("Service "+s.Name, s.Namespace)
		if s.Name == "glimpse-api" {
			apiSvc = &m.services[i]
		}
	}
	if apiSvc == nil {
		t.Fatal("no Service glimpse-api")
	}
	api := m.deployments["glimpse-api"]
	if len(apiSvc.Spec.Selector) == 0 || !subset(apiSvc.Spec.Selector, api.Spec.Template.Labels) {
		t.Errorf("Service glimpse-api selector %v does not match the api pods' labels %v", apiSvc.Spec.Selector, api.Spec.Template.Labels)
	}
	for name, d := range m.deployments {
		if name != "glimpse-api" && subset(apiSvc.Spec.Selector, d.Spec.Template.Labels) {
			t.Errorf("Service glimpse-api selector %v also matches the pods of %s", apiSvc.Spec.Selector, name)
		}
	}
	for _, p := range apiSvc.Spec.Ports {
		if !slices.ContainsFunc(api.Spec.Template.Spec.Containers[0].Ports, func(cp corev1.ContainerPort) bool {
			return cp.Name == p.TargetPort.String() || cp.ContainerPort == p.TargetPort.IntVal
		}) {
			t.Errorf("Service glimpse-api targets port %s, which the api pods do not expose", p.TargetPort.String())
		}
	}

	// The autoscaler runs as a ServiceAccount bound to a Role that may scale the worker Deployment.
	as := m.deployments["glimpse-autoscaler"]
	sa := as.Spec.Template.Spec.ServiceAccountName
	if _, ok := m.accounts[sa]; sa == "" || !ok {
		t.Fatalf("autoscaler runs as ServiceAccount %q, which is not defined", sa)
	}
	inv := parseArgs(as.Spec.Template.Spec.Containers[0].Args)
	if inv.flags["actuator"] != "kube" {
		t.Errorf("autoscaler --actuator %q; want kube", inv.flags["actuator"])
	}
	target := inv.flags["deployment"]
	if _, ok := m.deployments[target]; !ok || target != "glimpse-worker" {
		t.Errorf("autoscaler --deployment %q; want the worker Deployment glimpse-worker", target)
	}
	if got := inv.flags["namespace"]; got != ns {
		t.Errorf("autoscaler --namespace %q; want %q", got, ns)
	}
	bound := false
	for _, b := range m.bindings {
		inNS("RoleBinding "+b.Name, b.Namespace)
		if !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool {
			return s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == ns
		}) {
			continue
		}
		role, ok := m.roles[b.RoleRef.Name]
		if b.RoleRef.Kind != "Role" || b.RoleRef.APIGroup != rbacv1.GroupName || !ok {
			t.Errorf("RoleBinding %s refers to %s %q, which is not defined", b.Name, b.RoleRef.Kind, b.RoleRef.Name)
			continue
		}
		for _, verb := range []string{"get", "update", "patch"} {
			if !allows(role, "apps", "deployments/scale", target, verb) {
				t.Errorf("Role %s does not allow %s on deployments/scale %s", role.Name, verb, target)
			}
		}
		bound = true
	}
	if !bound {
		t.Errorf("no RoleBinding names the autoscaler's ServiceAccount %s", sa)
	}

	// KEDA, the alternative, points at our stream and consumer.
	if len(m.scaledObject) != 1 {
		t.Fatalf("%d KEDA ScaledObjects; want 1", len(m.scaledObject))
	}
	so := m.scaledObject[0]
	inNS("ScaledObject "+so.Metadata.Name, so.Metadata.Namespace)
	if so.Spec.ScaleTargetRef.Name != "glimpse-worker" {
		t.Errorf("ScaledObject scales %q; want glimpse-worker", so.Spec.ScaleTargetRef.Name)
	}
	if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "nats-jetstream" {
		t.Fatalf("ScaledObject triggers %+v; want one nats-jetstream", so.Spec.Triggers)
	}
	md := so.Spec.Triggers[0].Metadata
	for k, want := range map[string]string{"stream": queue.JobsStream, "consumer": queue.WorkersConsumer, "account": "$G"} {
		if md[k] != want {
			t.Errorf("ScaledObject trigger %s = %q; want %q", k, md[k], want)
		}
	}
	for k := range md {
		if !slices.Contains([]string{"natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold", "activationLagThreshold", "useHttps"}, k) {
			t.Errorf("ScaledObject trigger metadata %q is not a nats-jetstream scaler parameter", k)
		}
	}
	if ep := md["natsServerMonitoringEndpoint"]; !strings.HasSuffix(ep, ":8222") || strings.Contains(ep, "://") {
		t.Errorf("natsServerMonitoringEndpoint %q; want host:8222 without a scheme", ep)
	}
}

// containerEnv lists the environment variables a container gets (from env and envFrom, whose
// ConfigMaps and Secrets must exist) and the glimpse flag values they set.
func containerEnv(t *testing.T, m *manifests, where string, c corev1.Container) ([]string, map[string]string) {
	t.Helper()
	var names []string
	vals := map[string]string{}
	add := func(k, v string) {
		names = append(names, k)
		if f, ok := envFlag(k); ok {
			vals[f] = v
		}
	}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, ok := m.configMaps[ef.ConfigMapRef.Name]
			if !ok {
				t.Errorf("%s: envFrom ConfigMap %q is not defined", where, ef.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				add(k, v)
			}
		case ef.SecretRef != nil:
			s, ok := m.secrets[ef.SecretRef.Name]
			if !ok {
				t.Errorf("%s: envFrom Secret %q is not defined", where, ef.SecretRef.Name)
			}
			for k, v := range s.StringData {
				add(k, v)
			}
		}
	}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, ok := m.configMaps[ref.Name]
			if v, ok = cm.Data[ref.Key]; !ok {
				t.Errorf("%s: env %s refers to ConfigMap %s key %s, which is not defined", where, e.Name, ref.Name, ref.Key)
			}
		}
		add(e.Name, v)
	}
	return names, vals
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// allows reports whether role grants verb on resource (of group) named name.
func allows(role rbacv1.Role, group, resource, name, verb string) bool {
	for _, r := range role.Rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) &&
			slices.Contains(r.Verbs, verb) && (len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, name)) {
			return true
		}
	}
	return false
}

// --- compose -----------------------------------------------------------------------------------------

// compose is the part of the Compose specification deploy/compose.yaml uses; decoding
// rejects anything else, so a typo in a key fails here instead of being ignored.
type compose struct {
	Name       string                    `json:"name"`
	GlimpseEnv map[string]string         `json:"x-glimpse-env"`
	Services   map[string]composeService `json:"services"`
	Volumes    map[string]*struct{}      `json:"volumes"`
}

type composeService struct {
	Image       string            `json:"image"`
	Build       *composeBuild     `json:"build"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	Ports       []string          `json:"ports"`
	Volumes     []string          `json:"volumes"`
	DependsOn   map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Deploy *struct {
		Replicas int `json:"replicas"`
	} `json:"deploy"`
	Healthcheck *struct {
		Test     []string `json:"test"`
		Interval string   `json:"interval"`
		Timeout  string   `json:"timeout"`
		Retries  int      `json:"retries"`
	} `json:"healthcheck"`
	StopGracePeriod string `json:"stop_grace_period"`
	Restart         string `json:"restart"`
}

type composeBuild struct {
	Context    string `json:"context"`
	Dockerfile string `json:"dockerfile"`
	Target     string `json:"target"`
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	var c compose
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

func TestCompose(t *testing.T) {
	c := loadCompose(t)
	stages := dockerStages(t)
	for _, want := range []string{"nats-1", "nats-2", "nats-3", "postgres", "s3", "api", "worker", "autoscaler"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("no service %s", want)
		}
	}
	images := map[string]string{} // image → build target
	for name, s := range c.Services {
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("service %s depends on %s, which is not defined", name, dep)
			}
			if cond := s.DependsOn[dep].Condition; cond == "service_healthy" && c.Services[dep].Healthcheck == nil {
				t.Errorf("service %s waits for %s to be healthy, which has no healthcheck", name, dep)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s mounts volume %s, which is not declared", name, src)
			}
		}
		if s.Build != nil {
			if s.Build.Context != ".." || filepath.Clean(filepath.Join("..", s.Build.Dockerfile)) != filepath.Join("..", "deploy", "Dockerfile") {
				t.Errorf("service %s builds %+v; want context .. and deploy/Dockerfile", name, *s.Build)
			}
			if !slices.Contains(stages, s.Build.Target) {
				t.Errorf("service %s builds target %q; the Dockerfile's stages are %v", name, s.Build.Target, stages)
			}
			if prev, ok := images[s.Image]; ok && prev != s.Build.Target {
				t.Errorf("image %s is built from targets %s and %s", s.Image, prev, s.Build.Target)
			}
			images[s.Image] = s.Build.Target
		}
	}

	// NATS: three JetStream nodes with distinct names, each routed to every node.
	conf, err := os.ReadFile("nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"jetstream", "sync_interval: always", "cluster", "port: 6222", "http_port: 8222"} {
		if !bytes.Contains(conf, []byte(want)) {
			t.Errorf("nats.conf lacks %q", want)
		}
	}
	var nodes []string
	for name, s := range c.Services {
		if strings.HasPrefix(s.Image, "nats:2") {
			nodes = append(nodes, name)
		}
	}
	slices.Sort(nodes)
	if len(nodes) != 3 {
		t.Fatalf("NATS nodes %v; want 3 (nats:2.x images)", nodes)
	}
	for _, n := range nodes {
		inv := parseArgs(c.Services[n].Command)
		if inv.flags["name"] != n {
			t.Errorf("%s: --name %q; want %q", n, inv.flags["name"], n)
		}
		for _, peer := range nodes {
			if !strings.Contains(inv.flags["routes"], "nats://"+peer+":6222") {
				t.Errorf("%s: --routes %q does not reach %s", n, inv.flags["routes"], peer)
			}
		}
		if !slices.Contains(c.Services[n].Volumes, "./nats.conf:/etc/nats/nats.conf:ro") || inv.flags["config"] != "/etc/nats/nats.conf" {
			t.Errorf("%s: does not run with nats.conf", n)
		}
	}

	// Glimpse roles: real flags, and engine URLs that name the services above.
	for _, name := range []string{"api", "worker", "autoscaler"} {
		s := c.Services[name]
		if images[s.Image] != "runtime" {
			t.Errorf("service %s runs image %q; want the runtime target's", name, s.Image)
		}
		var env []string
		vals := map[string]string{}
		for k, v := range s.Environment {
			env = append(env, k)
			if f, ok := envFlag(k); ok {
				vals[f] = v
			}
		}
		inv := checkInvocation(t, "compose service "+name, s.Command, env)
		for k, v := range inv.flags {
			vals[k] = v
		}
		checkEngineURLs(t, "compose service "+name, vals)
		servers := vals["queue"]
		for _, n := range nodes {
			if !strings.Contains(servers, "nats://"+n+":4222") {
				t.Errorf("service %s: NATS servers %q omit %s", name, servers, n)
			}
		}
		if name != "autoscaler" {
			if vals["replicas"] != "3" {
				t.Errorf("service %s: --replicas %q; want 3 on a 3-node cluster", name, vals["replicas"])
			}
			bu, _ := url.Parse(vals["blob"])
			if ep, _ := url.Parse(bu.Query().Get("endpoint")); ep == nil || ep.Hostname() != "s3" {
				t.Errorf("service %s: blob endpoint %q; want the s3 service", name, bu.Query().Get("endpoint"))
			}
			if du, _ := url.Parse(vals["db"]); du == nil || du.Hostname() != "postgres" {
				t.Errorf("service %s: db %q; want the postgres service", name, vals["db"])
			}
			for _, dep := range []string{"nats-1", "postgres", "s3"} {
				if !dependsOn(c, name, dep) {
					t.Errorf("service %s does not (transitively) depend on %s", name, dep)
				}
			}
		}
	}
	if w := c.Services["worker"]; w.Deploy == nil || w.Deploy.Replicas != 2 {
		t.Errorf("worker replicas %+v; want 2", w.Deploy)
	}

	// The S3 server's root credentials are the ones glimpse signs with; its bucket is the blob URL's.
	s3 := c.Services["s3"]
	if s3.Environment["ROOT_ACCESS_KEY_ID"] != c.GlimpseEnv["AWS_ACCESS_KEY_ID"] ||
		s3.Environment["ROOT_SECRET_ACCESS_KEY"] != c.GlimpseEnv["AWS_SECRET_ACCESS_KEY"] {
		t.Errorf("s3 root credentials differ from glimpse's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
	}
	if !slices.Contains(s3.Command, "posix") || parseArgs(s3.Command).flags["port"] != ":7070" {
		t.Errorf("s3 command %q; want --port :7070 … posix DIR", s3.Command)
	}
	bu, _ := url.Parse(c.GlimpseEnv["GLIMPSE_BLOB"])
	df, _ := os.ReadFile("Dockerfile")
	if !bytes.Contains(df, []byte("ARG S3_BUCKET="+bu.Host+"\n")) {
		t.Errorf("the s3 image does not create bucket %q (ARG S3_BUCKET)", bu.Host)
	}
	pg := c.Services["postgres"].Environment
	du, _ := url.Parse(c.GlimpseEnv["GLIMPSE_DB"])
	if pw, _ := du.User.Password(); du.User.Username() != pg["POSTGRES_USER"] || pw != pg["POSTGRES_PASSWORD"] || du.Path != "/"+pg["POSTGRES_DB"] {
		t.Errorf("GLIMPSE_DB %s does not match the postgres service's user, password and database", du.Redacted())
	}
}

// dependsOn reports whether service from depends on to, directly or not.
func dependsOn(c compose, from, to string) bool {
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(s string) bool {
		if seen[s] {
			return false
		}
		seen[s] = true
		for d := range c.Services[s].DependsOn {
			if d == to || walk(d) {
				return true
			}
		}
		return false
	}
	return walk(from)
}

// --- Dockerfile --------------------------------------------------------------------------------------

// dockerInstr is one Dockerfile instruction with its continuation lines joined.
type dockerInstr struct {
	line int
	op   string
	args string
}

func dockerInstrs(t *testing.T) []dockerInstr {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []dockerInstr
	var cur strings.Builder
	start := 0
	for i, l := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(l)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		op, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstr{line: start, op: strings.ToUpper(op), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// dockerStages returns the Dockerfile's stage names in order.
func dockerStages(t *testing.T) []string {
	t.Helper()
	var stages []string
	for _, in := range dockerInstrs(t) {
		if in.op == "FROM" {
			f := strings.Fields(in.args)
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				stages = append(stages, f[2])
			} else {
				stages = append(stages, "")
			}
		}
	}
	return stages
}

func TestDockerfile(t *testing.T) {
	instrs := dockerInstrs(t)
	var (
		stages   []string
		globals  = map[string]string{}
		stage    string
		args     = map[string]map[string]string{} // stage → ARG → default
		lastFrom = -1
		runs     = map[string]string{}
	)
	argRef := regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
	for _, in := range instrs {
		where := fmt.Sprintf("Dockerfile:%d", in.line)
		switch in.op {
		case "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			if stage == "" && lastFrom < 0 {
				globals[k] = v
			} else {
				args[stage][k] = v
			}
		case "FROM":
			f := strings.Fields(in.args)
			if len(f) != 3 || !strings.EqualFold(f[1], "AS") {
				t.Errorf("%s: FROM %s: want FROM image AS name", where, in.args)
				continue
			}
			for _, m := range argRef.FindAllStringSubmatch(f[0], -1) {
				if _, ok := globals[m[1]]; !ok {
					t.Errorf("%s: FROM uses ${%s}, not declared by an ARG before the first FROM", where, m[1])
				}
			}
			if slices.Contains(stages, f[2]) {
				t.Errorf("%s: stage %s defined twice", where, f[2])
			}
			if !strings.Contains(f[0], ":") && !slices.Contains(stages, f[0]) {
				t.Errorf("%s: FROM %s is neither an earlier stage nor a tagged image", where, f[0])
			}
			stage, lastFrom = f[2], len(stages)
			stages = append(stages, stage)
			args[stage] = map[string]string{}
		case "COPY":
			for _, a := range strings.Fields(in.args) {
				if from, ok := strings.CutPrefix(a, "--from="); ok {
					i := slices.Index(stages, from)
					if i < 0 || from == stage {
						t.Errorf("%s: COPY --from=%s names no earlier stage (have %v)", where, from, stages[:len(stages)-1])
					}
				}
			}
		case "RUN":
			runs[stage] += in.args + "\n"
			for _, m := range argRef.FindAllStringSubmatch(in.args, -1) {
				if _, ok := args[stage][m[1]]; !ok && strings.ToUpper(m[1]) == m[1] && m[1] != "PATH" {
					t.Errorf("%s: RUN uses ${%s}, not declared by an ARG in stage %s", where, m[1], stage)
				}
			}
		}
	}
	if len(stages) == 0 || stages[len(stages)-1] != "runtime" {
		t.Errorf("stages %v: the last (default) target should be runtime", stages)
	}
	for _, want := range []string{"build", "onnxruntime", "model", "s3", "runtime"} {
		if !slices.Contains(stages, want) {
			t.Errorf("no stage %s (have %v)", want, stages)
		}
	}
	// The image needs the JPEG fast path and, for the autoscaler on Kubernetes, the kube actuator.
	tags := strings.Fields(strings.Trim(args["build"]["GO_TAGS"], `"`))
	if !strings.Contains(runs["build"], `go build -tags "${GO_TAGS}"`) || !slices.Contains(tags, "turbojpeg") || !slices.Contains(tags, "kube") {
		t.Errorf("build stage: want go build -tags \"${GO_TAGS}\" with GO_TAGS holding turbojpeg and kube; GO_TAGS=%q, RUN:\n%s", tags, runs["build"])
	}
	if !strings.Contains(runs["build"], "libturbojpeg0-dev") || !strings.Contains(runs["runtime"], "libturbojpeg0 ") {
		t.Errorf("libjpeg-turbo: want libturbojpeg0-dev in build and libturbojpeg0 in runtime")
	}
	ort := args["onnxruntime"]
	if ort["ORT_VERSION"] != models.RuntimeVersion || ort["ORT_SHA256"] != models.RuntimeSHA256 {
		t.Errorf("onnxruntime stage pins %s %s; glimpse expects %s %s", ort["ORT_VERSION"], ort["ORT_SHA256"], models.RuntimeVersion, models.RuntimeSHA256)
	}
	for _, want := range []string{"npm pack", "sha256sum -c", models.RuntimeLib} {
		if !strings.Contains(runs["onnxruntime"], want) {
			t.Errorf("onnxruntime stage lacks %q", want)
		}
	}
	if !strings.Contains(runs["model"], "glimpse models fetch") || !strings.Contains(runs["model"], "glimpse models verify") {
		t.Errorf("model stage does not fetch and verify the model:\n%s", runs["model"])
	}
	// The runtime image's entrypoint is glimpse, with its default command a real one.
	var entry, cmd []string
	for _, in := range instrs {
		switch in.op {
		case "ENTRYPOINT":
			entry = nil
			json.Unmarshal([]byte(in.args), &entry)
		case "CMD":
			cmd = nil
			json.Unmarshal([]byte(in.args), &cmd)
		case "FROM":
			entry, cmd = nil, nil
		}
	}
	if !slices.Equal(entry, []string{"glimpse"}) {
		t.Errorf("runtime ENTRYPOINT %q; want [\"glimpse\"]", entry)
	}
	checkInvocation(t, "Dockerfile CMD", cmd, nil)
}
