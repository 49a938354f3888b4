package validate

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const natsValuesPath = "deploy/nats/values.yaml"

// chartKeys are the value paths of the NATS Helm chart (nats-io/k8s, chart
// nats 2.14.2) that deploy/nats/values.yaml may set, checked by hand against
// that chart's values.yaml (the chart has no values schema, and it cannot
// be downloaded at test time). Under a path ending in ".*" anything goes:
// those are free-form (nats.conf, Kubernetes resources). A misspelt key is
// silently ignored by helm; here it fails.
var chartKeys = []string{
	"config.cluster.enabled", "config.cluster.replicas",
	"config.cluster.tls.enabled", "config.cluster.tls.secretName",
	"config.jetstream.enabled", "config.jetstream.fileStore.enabled", "config.jetstream.fileStore.dir",
	"config.jetstream.fileStore.pvc.enabled", "config.jetstream.fileStore.pvc.size",
	"config.jetstream.fileStore.pvc.storageClassName", "config.jetstream.fileStore.maxSize",
	"config.jetstream.memoryStore.enabled",
	"config.nats.port", "config.nats.tls.enabled", "config.nats.tls.secretName",
	"config.monitor.enabled", "config.monitor.port",
	"config.merge.*",
	"container.resources.*",
	"container.image.*",
	"podTemplate.topologySpreadConstraints.*",
	"podDisruptionBudget.enabled",
	"natsBox.enabled",
	"promExporter.enabled",
}

func natsValues(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := yaml.Unmarshal(readFile(t, natsValuesPath), &v); err != nil {
		t.Fatalf("%s: %v", natsValuesPath, err)
	}
	return v
}

// leafPaths lists the dotted paths of v's leaves.
func leafPaths(prefix string, v any) []string {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return []string{prefix}
	}
	var out []string
	for k, sub := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		out = append(out, leafPaths(p, sub)...)
	}
	sort.Strings(out)
	return out
}

func knownChartKey(p string) bool {
	for _, k := range chartKeys {
		if base, free := strings.CutSuffix(k, ".*"); free {
			if p == base || strings.HasPrefix(p, base+".") {
				return true
			}
		} else if p == k {
			return true
		}
	}
	return false
}

func TestNATSValues(t *testing.T) {
	v := natsValues(t)
	for _, p := range leafPaths("", v) {
		if !knownChartKey(p) {
			t.Errorf("%s: %s is not a value of the NATS chart 2.14.2 this file was checked against (see chartKeys)", natsValuesPath, p)
		}
	}
	want := map[string]any{
		"config.cluster.enabled":             true,
		"config.cluster.replicas":            float64(3),
		"config.jetstream.enabled":           true,
		"config.jetstream.fileStore.enabled": true,
		"config.nats.tls.enabled":            true,
		"config.cluster.tls.enabled":         true,
		"config.monitor.enabled":             true,
		"natsBox.enabled":                    false,
	}
	for p, w := range want {
		if got := dig(t, v, strings.Split(p, ".")...); got != w {
			t.Errorf("%s = %v, want %v", p, got, w)
		}
	}

	// The account ferry uses has JetStream; the others are the system's.
	acc := scaledObjectAccount(t)
	if got := dig(t, v, "config", "merge", "accounts", acc, "jetstream"); got != "enabled" {
		t.Errorf("account %s: jetstream %v, want enabled", acc, got)
	}

	// The manifests reach the servers the chart makes: release "nats" in
	// namespace "nats" gives the services nats and nats-headless.
	d := workerContainer(t, workerDeployment(t))
	nu, err := url.Parse(flagValue(d.Args, "--nats"))
	if err != nil {
		t.Fatal(err)
	}
	if nu.Hostname() != "nats.nats.svc" || nu.Port() != portString(dig(t, v, "config", "nats", "port")) {
		t.Errorf("worker --nats %s: want tls://nats.nats.svc:%v (the chart's client service)", nu, dig(t, v, "config", "nats", "port"))
	}
	mu := scaledObjectURL(t)
	if mu.Hostname() != "nats-headless.nats.svc" || mu.Port() != portString(dig(t, v, "config", "monitor", "port")) {
		t.Errorf("ScaledObject url %s: want http://nats-headless.nats.svc:%v (the chart's headless service, monitoring port)", mu, dig(t, v, "config", "monitor", "port"))
	}
}

// portString formats a port decoded from YAML (a float64).
func portString(v any) string {
	f, _ := v.(float64)
	return strconv.FormatFloat(f, 'f', -1, 64)
}
