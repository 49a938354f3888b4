package validate

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// kinds maps apiVersion/kind to a constructor of the Go type a manifest of
// that kind decodes into. A kind not listed here is an error: add it here
// (with its k8s.io/api or KEDA type) when a manifest of a new kind is added.
var kinds = map[string]func() any{
	"v1/Namespace":                  func() any { return &corev1.Namespace{} },
	"v1/ServiceAccount":             func() any { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":                  func() any { return &corev1.ConfigMap{} },
	"apps/v1/Deployment":            func() any { return &appsv1.Deployment{} },
	"keda.sh/v1alpha1/ScaledObject": func() any { return &kedav1alpha1.ScaledObject{} },
}

// decodeStrict decodes a YAML document into obj the way the API server's
// strict field validation does: a duplicate key, an unknown field, or a
// field spelt with other capitals (encoding/json would accept
// readOnlyRootFileSystem; Kubernetes does not) is an error.
func decodeStrict(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// object is one decoded manifest.
type object struct {
	file string
	obj  any
}

// decodeManifests strictly decodes every document of deploy/kubernetes into
// its Go type: an unknown field (a typo, a field at the wrong level, one
// that the API version does not have) or a duplicate field is an error.
func decodeManifests(t *testing.T) []object {
	t.Helper()
	var out []object
	for _, path := range manifestFiles(t) {
		file := filepath.Base(path)
		b := readFile(t, filepath.Join("deploy", "kubernetes", file))
		docs := splitDocs(b)
		if len(docs) == 0 {
			t.Errorf("%s: no documents", file)
		}
		for i, doc := range docs {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s document %d: %v", file, i+1, err)
			}
			mk, ok := kinds[tm.APIVersion+"/"+tm.Kind]
			if !ok {
				t.Errorf("%s document %d: %s %s is not a kind this test knows (add it to kinds)", file, i+1, tm.APIVersion, tm.Kind)
				continue
			}
			obj := mk()
			if err := decodeStrict(doc, obj); err != nil {
				t.Errorf("%s document %d (%s): %v", file, i+1, tm.Kind, err)
				continue
			}
			out = append(out, object{file: file, obj: obj})
		}
	}
	return out
}

func TestManifestsDecodeStrictly(t *testing.T) {
	objs := decodeManifests(t)
	seen := map[string]string{}
	for _, o := range objs {
		m, ok := o.obj.(metav1.Object)
		if !ok {
			t.Fatalf("%s: %T has no metadata", o.file, o.obj)
		}
		if m.GetName() == "" {
			t.Errorf("%s: no metadata.name", o.file)
		}
		if _, ns := o.obj.(*corev1.Namespace); !ns && m.GetNamespace() != "ferry" {
			t.Errorf("%s: namespace %q, want ferry", o.file, m.GetNamespace())
		}
		key := fmt.Sprintf("%T/%s", o.obj, m.GetName())
		if prev, dup := seen[key]; dup {
			t.Errorf("%s and %s both define %s", prev, o.file, key)
		}
		seen[key] = o.file
	}
}

// TestStrictDecodingRejectsUnknownFields makes sure the decoding above
// catches the mistakes it is there for.
func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
		obj             any
	}{
		{"other capitals", "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n" +
			"        - name: x\n          securityContext:\n            readOnlyRootFileSystem: true\n", "unknown field", &appsv1.Deployment{}},
		{"wrong level", "apiVersion: apps/v1\nkind: Deployment\nspec:\n  securityContext:\n    runAsNonRoot: true\n", "unknown field", &appsv1.Deployment{}},
		{"duplicate", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\n  name: b\n", "already set", &appsv1.Deployment{}},
		{"KEDA field", "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nspec:\n  scaleTargetRef:\n    name: x\n  minReplicas: 0\n", "unknown field", &kedav1alpha1.ScaledObject{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := decodeStrict([]byte(tc.doc), tc.obj); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// find returns the one object of type T.
func find[T any](t *testing.T, objs []object) T {
	t.Helper()
	var found []T
	for _, o := range objs {
		if v, ok := o.obj.(T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("%d objects of type %T, want 1", len(found), zero)
	}
	return found[0]
}

func workerDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	return find[*appsv1.Deployment](t, decodeManifests(t))
}

func workerContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("worker pod has %d containers, want 1", len(cs))
	}
	if len(d.Spec.Template.Spec.InitContainers) != 0 {
		t.Fatal("worker pod has init containers")
	}
	return cs[0]
}

func TestWorkerDeploymentSecurity(t *testing.T) {
	d := workerDeployment(t)
	pod := d.Spec.Template.Spec
	c := workerContainer(t, d)

	if d.Spec.Replicas != nil {
		t.Error("spec.replicas is set: KEDA's HPA owns the replica count, and every apply would reset it")
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Error("pod: runAsNonRoot must be true")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod: seccompProfile must be RuntimeDefault")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("pod: automountServiceAccountToken must be false (workers never call the Kubernetes API)")
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Error("pod: host namespaces")
	}

	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("container: no securityContext")
	}
	check := func(ok bool, what string) {
		if !ok {
			t.Errorf("container: %s", what)
		}
	}
	check(sc.RunAsNonRoot != nil && *sc.RunAsNonRoot, "runAsNonRoot must be true")
	check(sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem, "readOnlyRootFilesystem must be true")
	check(sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation, "allowPrivilegeEscalation must be false")
	check(sc.Privileged == nil || !*sc.Privileged, "privileged")
	check(sc.Capabilities != nil && slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(sc.Capabilities.Add) == 0,
		"capabilities: drop [ALL], add none")
	check(sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault, "seccompProfile must be RuntimeDefault")
	uid := containerfileUser(t)
	check(sc.RunAsUser != nil && *sc.RunAsUser == uid && psc.RunAsUser != nil && *psc.RunAsUser == uid,
		fmt.Sprintf("runAsUser must be the Containerfile's USER %d", uid))

	// Resources: requests for scheduling, a memory limit.
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Error("container: cpu and memory requests needed")
	}
	if c.Resources.Limits.Memory().IsZero() {
		t.Error("container: memory limit needed")
	}

	// Credentials: from the Secret, as files or env references, never in
	// args or literal env values.
	checkNoCredentialsInArgs(t, "worker args", c.Args)
	checkNoCredentialsInArgs(t, "worker command", c.Command)
	for _, e := range c.Env {
		n := strings.ToUpper(e.Name)
		if e.Value != "" && (strings.Contains(n, "SECRET") || strings.Contains(n, "TOKEN") ||
			strings.Contains(n, "PASSWORD") || strings.Contains(n, "ACCESS_KEY") || strings.Contains(n, "PASSPHRASE")) {
			t.Errorf("env %s has a literal value: take it from a Secret", e.Name)
		}
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	secretFiles := false
	var secretMounts []string
	for _, v := range pod.Volumes {
		m, ok := mounts[v.Name]
		if !ok {
			t.Errorf("volume %s is not mounted", v.Name)
			continue
		}
		if v.HostPath != nil {
			t.Errorf("volume %s: hostPath", v.Name)
		}
		if v.Secret != nil {
			secretFiles = true
			if !m.ReadOnly {
				t.Errorf("secret volume %s must be mounted read-only", v.Name)
			}
			secretMounts = append(secretMounts, m.MountPath)
		}
	}
	// Each flag that names a credential file points into a secret mount.
	for _, flag := range []string{"--nats-nkey", "--nats-creds", "--signing-key-file", "--nats-token-file"} {
		f := flagValue(c.Args, flag)
		if f == "" {
			continue
		}
		if !slices.ContainsFunc(secretMounts, func(mp string) bool { return strings.HasPrefix(f, mp+"/") }) {
			t.Errorf("%s %s is not in a secret mount (%s)", flag, f, strings.Join(secretMounts, ", "))
		}
	}
	if !secretFiles {
		t.Error("no Secret volume: where do the credentials come from?")
	}

	// A read-only root: the state directory and /tmp are volumes.
	state := flagValue(c.Args, "--state-dir")
	if state == "" {
		t.Error("worker args: no --state-dir")
	}
	for _, dir := range []string{state, "/tmp"} {
		if !underMount(dir, c.VolumeMounts) {
			t.Errorf("%s is not on a writable volume (the root filesystem is read-only)", dir)
		}
	}
}

// underMount reports whether dir is inside a writable volume mount.
func underMount(dir string, mounts []corev1.VolumeMount) bool {
	for _, m := range mounts {
		if !m.ReadOnly && (dir == m.MountPath || strings.HasPrefix(dir, m.MountPath+"/")) {
			return true
		}
	}
	return false
}

// TestWorkerDrain: stopping a pod must leave ferry time to drain. ferry
// drains on SIGTERM (the first signal: no new work, in-flight objects
// finish for up to --drain-timeout, the rest goes back on the queue), so
// the grace period must outlast the drain. A preStop hook would need a
// shell the image does not have, and would only delay the SIGTERM.
func TestWorkerDrain(t *testing.T) {
	d := workerDeployment(t)
	c := workerContainer(t, d)
	drain, err := time.ParseDuration(flagValue(c.Args, "--drain-timeout"))
	if err != nil {
		t.Fatalf("worker args: --drain-timeout: %v", err)
	}
	grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second < drain+15*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v: want at least --drain-timeout %s + 15s", grace, drain)
	}
	if l := c.Lifecycle; l != nil {
		if l.PreStop != nil && l.PreStop.Exec != nil && (len(l.PreStop.Exec.Command) == 0 || l.PreStop.Exec.Command[0] != "/ferry") {
			t.Errorf("preStop exec %q: the image has no shell, only /ferry", l.PreStop.Exec.Command)
		}
		if l.StopSignal != nil && *l.StopSignal != corev1.SIGTERM {
			t.Errorf("stop signal %s: ferry drains on SIGTERM", *l.StopSignal)
		}
	}
}

func TestScaledObject(t *testing.T) {
	objs := decodeManifests(t)
	so := find[*kedav1alpha1.ScaledObject](t, objs)
	d := find[*appsv1.Deployment](t, objs)

	ref := so.Spec.ScaleTargetRef
	if ref == nil || ref.Name != d.Name || (ref.Kind != "" && ref.Kind != "Deployment") || so.Namespace != d.Namespace {
		t.Fatalf("scaleTargetRef %+v does not name the worker Deployment %s/%s", ref, d.Namespace, d.Name)
	}
	if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount != 0 {
		t.Error("minReplicaCount must be 0: no workers while there is no work")
	}
	if so.Spec.MaxReplicaCount == nil || *so.Spec.MaxReplicaCount < 1 {
		t.Error("maxReplicaCount must be set")
	}
	if len(so.Spec.Triggers) != 1 {
		t.Fatalf("%d triggers, want 1", len(so.Spec.Triggers))
	}
	tr := so.Spec.Triggers[0]
	if tr.Type != "metrics-api" {
		t.Fatalf("trigger type %q, want metrics-api (see docs/deploy.md)", tr.Type)
	}
	md := tr.Metadata
	for _, k := range []string{"url", "valueLocation", "targetValue", "activationTargetValue", "format"} {
		if md[k] == "" {
			t.Errorf("trigger metadata %s missing", k)
		}
	}
	if md["format"] != "json" {
		t.Errorf("format %q, want json", md["format"])
	}
	if md["activationTargetValue"] != "0" {
		t.Errorf("activationTargetValue %q: want 0, so that one queued message wakes a worker", md["activationTargetValue"])
	}
	u, err := url.Parse(md["url"])
	if err != nil {
		t.Fatal(err)
	}
	if u.Path != "/jsz" || u.Query().Get("streams") != "true" || u.Query().Get("acc") == "" {
		t.Errorf("url %s: want the /jsz endpoint with acc=ACCOUNT&streams=true", u)
	}
	if !strings.Contains(md["valueLocation"], `(name=="`+u.Query().Get("acc")+`")`) {
		t.Errorf("valueLocation %s does not select the account %s of the url", md["valueLocation"], u.Query().Get("acc"))
	}
}

// TestWorkerTrust: workers run only signed work, so the Deployment gives
// them the fleet's signing key from a Secret (a pod's own key would be new
// at every start, and no trust file could name it) and the trust file from
// the ConfigMap that the manifests define, and names its allow-lists.
func TestWorkerTrust(t *testing.T) {
	objs := decodeManifests(t)
	d := find[*appsv1.Deployment](t, objs)
	c := workerContainer(t, d)
	pod := d.Spec.Template.Spec
	volumeOf := func(path string) (corev1.Volume, bool) {
		for _, m := range c.VolumeMounts {
			if strings.HasPrefix(path, m.MountPath+"/") {
				if !m.ReadOnly {
					t.Errorf("%s: mount %s must be read-only", path, m.MountPath)
				}
				for _, v := range pod.Volumes {
					if v.Name == m.Name {
						return v, true
					}
				}
			}
		}
		return corev1.Volume{}, false
	}

	key := flagValue(c.Args, "--signing-key-file")
	if v, ok := volumeOf(key); !ok || v.Secret == nil {
		t.Errorf("--signing-key-file %q is not in a Secret volume", key)
	} else if m := v.Secret.DefaultMode; m == nil || *m&0o007 != 0 {
		t.Errorf("signing key Secret mode %v: others must not read it (ferry refuses it)", m)
	}

	tf := flagValue(c.Args, "--trust-file")
	v, ok := volumeOf(tf)
	if !ok || v.ConfigMap == nil {
		t.Fatalf("--trust-file %q is not in a ConfigMap volume", tf)
	}
	var cm *corev1.ConfigMap
	for _, o := range objs {
		if x, ok := o.obj.(*corev1.ConfigMap); ok && x.Name == v.ConfigMap.Name {
			cm = x
		}
	}
	if cm == nil {
		t.Fatalf("the ConfigMap %s of --trust-file is not in deploy/kubernetes", v.ConfigMap.Name)
	}
	data, ok := cm.Data[filepath.Base(tf)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cm.Name, filepath.Base(tf))
	}
	keys := 0
	for _, line := range strings.Split(data, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			if !strings.HasPrefix(line, "ferry-ed25519:") {
				t.Errorf("trust file line %q is not a ferry key", line)
			}
			keys++
		}
	}
	if keys < 2 {
		t.Errorf("trust file has %d keys: want the coordinator's and the fleet's", keys)
	}

	// Allow-lists: no local paths in a pod; endpoints named.
	if flagValue(c.Args, "--allow-local") != "" {
		t.Error("--allow-local in a pod: jobs could read and write the pod's files")
	}
	if ep := flagValue(c.Args, "--allow-endpoint"); ep != "" && !strings.HasPrefix(ep, "https://") {
		t.Errorf("--allow-endpoint %s: want https://", ep)
	}
	if slices.Contains(c.Args, "--allow-unauthenticated-nats") {
		t.Error("--allow-unauthenticated-nats in the Deployment")
	}
}
