package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// decodeStrict decodes a YAML document into v, rejecting any field v's
// type does not have: a misspelt or misplaced field fails here, as
// kubectl apply --validate=strict would.
func decodeStrict(doc []byte, v any) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

type manifests struct {
	deployment *appsv1.Deployment
	service    *corev1.Service
	pdb        *policyv1.PodDisruptionBudget
}

func loadManifests(t *testing.T, data []byte) manifests {
	t.Helper()
	var m manifests
	for i, doc := range strings.Split(string(data), "\n---\n") {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var (
			v   any
			err error
		)
		switch fmt.Sprintf("%s/%s", tm.APIVersion, tm.Kind) {
		case "apps/v1/Deployment":
			m.deployment = new(appsv1.Deployment)
			v = m.deployment
		case "v1/Service":
			m.service = new(corev1.Service)
			v = m.service
		case "policy/v1/PodDisruptionBudget":
			m.pdb = new(policyv1.PodDisruptionBudget)
			v = m.pdb
		default:
			t.Fatalf("document %d: unexpected %s %s", i, tm.APIVersion, tm.Kind)
		}
		if err = decodeStrict([]byte(doc), v); err != nil {
			t.Fatalf("document %d (%s): %v", i, tm.Kind, err)
		}
	}
	if m.deployment == nil || m.service == nil || m.pdb == nil {
		t.Fatal("want a Deployment, a Service and a PodDisruptionBudget")
	}
	return m
}

func TestKubernetesManifests(t *testing.T) {
	data, err := os.ReadFile(repo("deploy/kubernetes/switchyard.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := loadManifests(t, data)
	d := m.deployment
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	flags := checkFlags(t, "the Deployment", c.Args)

	// Probes: native gRPC on the serving port; liveness on a name that
	// stays SERVING during the drain, readiness on one that does not.
	port := c.Ports[0].ContainerPort
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.GRPC == nil || p.GRPC.Port != port || p.GRPC.Service == nil || *p.GRPC.Service != name {
			t.Errorf("%sProbe = %+v; want grpc on port %d, service %q", name, p, port, name)
		}
	}
	// The pod has time to drain before it is killed.
	drain, err1 := time.ParseDuration(flags["drain-delay"])
	grace, err2 := time.ParseDuration(flags["shutdown-grace"])
	if err1 != nil || err2 != nil {
		t.Fatalf("-drain-delay %q, -shutdown-grace %q: %v %v", flags["drain-delay"], flags["shutdown-grace"], err1, err2)
	}
	if tg := pod.TerminationGracePeriodSeconds; tg == nil || time.Duration(*tg)*time.Second < drain+grace {
		t.Errorf("terminationGracePeriodSeconds below drain-delay %v + shutdown-grace %v", drain, grace)
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("the pod may run as root")
	}
	// Selectors match the pods.
	podLabels := labels.Set(d.Spec.Template.Labels)
	for what, sel := range map[string]*metav1.LabelSelector{"Deployment": d.Spec.Selector, "PodDisruptionBudget": m.pdb.Spec.Selector} {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil || s.Empty() || !s.Matches(podLabels) {
			t.Errorf("the %s's selector %v does not select the pods (%v)", what, sel, err)
		}
	}
	if !labels.SelectorFromSet(m.service.Spec.Selector).Matches(podLabels) || len(m.service.Spec.Selector) == 0 {
		t.Errorf("the Service's selector %v does not select the pods", m.service.Spec.Selector)
	}
	if m.pdb.Spec.MinAvailable == nil || m.pdb.Spec.MinAvailable.IntValue() < 1 || *d.Spec.Replicas <= int32(m.pdb.Spec.MinAvailable.IntValue()) {
		t.Errorf("PodDisruptionBudget minAvailable %v with %d replicas: a drain could take every pod or none", m.pdb.Spec.MinAvailable, *d.Spec.Replicas)
	}
}

// The strict decoding can fail: an unknown field is rejected.
func TestKubernetesStrictDecodingRejectsUnknownFields(t *testing.T) {
	bad := []byte("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x}\nspec:\n  minAvailible: 1\n")
	if err := decodeStrict(bad, new(policyv1.PodDisruptionBudget)); err == nil {
		t.Error("a misspelt field was accepted")
	}
}
