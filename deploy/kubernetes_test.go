package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consentd/consentd/config"
)

// manifests reads the resources kustomization.yaml lists, by kind.
func manifests(t *testing.T) map[string]map[string]any {
	t.Helper()
	k := readYAML(t, "kubernetes/kustomization.yaml")
	out := map[string]map[string]any{}
	for _, r := range strs(list(k, "resources")) {
		for _, doc := range readYAMLDocs(t, filepath.Join("kubernetes", r)) {
			kind := str(doc, "kind")
			if str(doc, "apiVersion") == "" || kind == "" || str(doc, "metadata", "name") == "" {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name", r)
			}
			if out[kind] != nil {
				t.Errorf("%s: a second %s", r, kind)
			}
			out[kind] = doc
		}
	}
	for _, kind := range []string{"Deployment", "ConfigMap", "Secret", "Service", "PodDisruptionBudget"} {
		if out[kind] == nil {
			t.Fatalf("no %s among the resources of kustomization.yaml", kind)
		}
	}
	return out
}

// TestKubernetesManifests parses the manifests and checks that they fit
// together and fit consentd: the probes hit /healthz and /readyz on the
// admin port the configuration listens on, resources are set, the pod runs
// as the image's non-root user, every secret file the configuration names
// is a key of the Secret, the configuration in the ConfigMap is valid
// (with the Deployment's environment), the PodDisruptionBudget and the
// Service select the Deployment's pods.
func TestKubernetesManifests(t *testing.T) {
	m := manifests(t)
	dep, cm, sec, svc, pdb := m["Deployment"], m["ConfigMap"], m["Secret"], m["Service"], m["PodDisruptionBudget"]
	pod := at(dep, "spec", "template", "spec")
	c := at(pod, "containers", 0)

	// the configuration, parsed as consentd would with the Deployment's environment
	cfg := deploymentConfig(t, m)
	args := strs(list(c, "args"))
	cfgPath := args[slices.Index(args, "--config")+1]
	var cfgMount, secretMount string
	for _, vm := range list(c, "volumeMounts") {
		if str(vm, "readOnly") != "true" {
			t.Errorf("volume %s is mounted writable", str(vm, "name"))
		}
		switch str(vm, "name") {
		case "config":
			cfgMount = str(vm, "mountPath")
		case "secrets":
			secretMount = str(vm, "mountPath")
		}
	}
	if filepath.Dir(cfgPath) != cfgMount {
		t.Fatalf("--config %s is not in the ConfigMap's mount %s", cfgPath, cfgMount)
	}
	if str(cm, "data", filepath.Base(cfg.Policy)) == "" || filepath.Dir(cfg.Policy) != cfgMount {
		t.Errorf("policy %s is not in the ConfigMap", cfg.Policy)
	}
	shipped, err := os.ReadFile(filepath.Join(root, "configs", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if str(cm, "data", "policy.yaml") != string(shipped) {
		t.Error("the ConfigMap's policy.yaml differs from configs/policy.yaml")
	}

	// secrets: each file the configuration reads from the secret mount is a key of the Secret
	secretKeys := map[string]bool{}
	for _, field := range []string{"stringData", "data"} {
		kv, _ := at(sec, field).(map[string]any)
		for k := range kv {
			secretKeys[k] = true
		}
	}
	files := []string{cfg.Pseudonymization.KeyFile, cfg.Admin.TokenFile, cfg.Kafka.SASL.PasswordFile, cfg.Redis.PasswordFile}
	for _, f := range files {
		if f == "" {
			continue
		}
		if filepath.Dir(f) != secretMount || !secretKeys[filepath.Base(f)] {
			t.Errorf("%s is not a key of Secret %s mounted at %s", f, str(sec, "metadata", "name"), secretMount)
		}
	}
	var secretVol any
	for _, v := range list(pod, "volumes") {
		if str(v, "name") == "secrets" {
			secretVol = v
		}
	}
	if str(secretVol, "secret", "secretName") != str(sec, "metadata", "name") || str(at(cm, "metadata"), "name") != str(pod, "volumes", 0, "configMap", "name") {
		t.Error("the pod's volumes do not name the Secret and the ConfigMap")
	}
	// files are root:fsGroup: the mode must let the group read and others not
	mode, _ := at(secretVol, "secret", "defaultMode").(int)
	if mode&0o040 == 0 || mode&0o007 != 0 || str(pod, "securityContext", "fsGroup") != "65532" {
		t.Errorf("secret defaultMode %o with fsGroup %s: want group-readable, nothing for others, fsGroup 65532", mode, str(pod, "securityContext", "fsGroup"))
	}

	// probes on the admin port
	_, adminPort, _ := strings.Cut(cfg.Admin.Listen, ":")
	var portName string
	for _, p := range list(c, "ports") {
		if str(p, "containerPort") == adminPort {
			portName = str(p, "name")
		}
	}
	if portName == "" {
		t.Fatalf("no container port %s (admin.listen %s)", adminPort, cfg.Admin.Listen)
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
		if str(c, probe, "httpGet", "path") != path || str(c, probe, "httpGet", "port") != portName {
			t.Errorf("%s: want GET %s on port %s", probe, path, portName)
		}
	}
	for _, r := range [][]any{{"requests", "cpu"}, {"requests", "memory"}, {"limits", "memory"}} {
		if str(c, append([]any{"resources"}, r...)...) == "" {
			t.Errorf("resources.%s.%s is not set", r[0], r[1])
		}
	}
	// non-root, as the image
	sc := at(pod, "securityContext")
	if str(sc, "runAsNonRoot") != "true" || str(sc, "runAsUser") != "65532" || str(c, "securityContext", "allowPrivilegeEscalation") != "false" || str(c, "securityContext", "readOnlyRootFilesystem") != "true" {
		t.Error("the pod must run as non-root user 65532 without privilege escalation on a read-only root")
	}
	// graceful shutdown fits in the termination grace period
	grace, _ := strconv.Atoi(str(pod, "terminationGracePeriodSeconds"))
	if time.Duration(grace)*time.Second <= cfg.Pipeline.ShutdownGrace {
		t.Errorf("terminationGracePeriodSeconds %d does not exceed pipeline.shutdown_grace %s", grace, cfg.Pipeline.ShutdownGrace)
	}

	// selectors
	podLabels := at(dep, "spec", "template", "metadata", "labels").(map[string]any)
	matches := func(sel map[string]any) bool {
		for k, v := range sel {
			if podLabels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	for name, sel := range map[string]any{"Deployment": at(dep, "spec", "selector", "matchLabels"), "PodDisruptionBudget": at(pdb, "spec", "selector", "matchLabels"), "Service": at(svc, "spec", "selector")} {
		if s, ok := sel.(map[string]any); !ok || !matches(s) {
			t.Errorf("the %s selector %v does not select the pods %v", name, sel, podLabels)
		}
	}
	replicas, _ := strconv.Atoi(str(dep, "spec", "replicas"))
	maxUnavailable, _ := strconv.Atoi(str(pdb, "spec", "maxUnavailable"))
	if replicas < 2 || maxUnavailable < 1 || maxUnavailable >= replicas {
		t.Errorf("replicas %d and PodDisruptionBudget maxUnavailable %d: a drain must leave an instance running", replicas, maxUnavailable)
	}
	if str(svc, "spec", "ports", 0, "targetPort") != portName {
		t.Error("the Service does not target the admin port")
	}
}

// deploymentConfig parses the ConfigMap's configuration as the
// Deployment's container reads it (its --config, its environment).
func deploymentConfig(t *testing.T, m map[string]map[string]any) *config.Config {
	t.Helper()
	c := at(m["Deployment"], "spec", "template", "spec", "containers", 0)
	env := map[string]string{}
	for _, e := range list(c, "env") {
		if v, ok := at(e, "value").(string); ok {
			env[str(e, "name")] = v
		}
	}
	args := strs(list(c, "args"))
	cfgPath := args[slices.Index(args, "--config")+1]
	cfg, err := config.ParseEnv(cfgPath, []byte(str(m["ConfigMap"], "data", filepath.Base(cfgPath))), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("the ConfigMap's %s: %v", filepath.Base(cfgPath), err)
	}
	return cfg
}

// TestKubernetesNetworkPolicy: a NetworkPolicy selects the pods and lets
// in only the admin and API ports, the admin port only from the scraper
// (Prometheus pods of the monitoring namespace: both selectors in one
// peer) and the API port only from labelled pods of the namespace (the
// API listens on 0.0.0.0 in the pod: without it any pod could call it).
// Its ports are cross-checked with the container's ports, the Service,
// the scrape annotation and the listen addresses of the configuration.
func TestKubernetesNetworkPolicy(t *testing.T) {
	m := manifests(t)
	np := m["NetworkPolicy"]
	if np == nil {
		t.Fatal("no NetworkPolicy among the resources of kustomization.yaml")
	}
	podLabels := at(m["Deployment"], "spec", "template", "metadata", "labels").(map[string]any)
	sel, _ := at(np, "spec", "podSelector", "matchLabels").(map[string]any)
	if len(sel) == 0 {
		t.Fatal("the NetworkPolicy selects no pods")
	}
	for k, v := range sel {
		if podLabels[k] != v {
			t.Fatalf("the NetworkPolicy selector %v does not select the pods %v", sel, podLabels)
		}
	}
	if !slices.Contains(strs(list(np, "spec", "policyTypes")), "Ingress") {
		t.Fatal("the NetworkPolicy does not restrict ingress")
	}

	// the container's ports are the configuration's listeners
	cfg := deploymentConfig(t, m)
	containerPorts := map[string]string{} // name -> number
	for _, p := range list(at(m["Deployment"], "spec", "template", "spec", "containers", 0), "ports") {
		containerPorts[str(p, "name")] = str(p, "containerPort")
	}
	for name, listen := range map[string]string{"admin": cfg.Admin.Listen, "api": cfg.Admin.APIListen} {
		host, port, _ := strings.Cut(listen, ":")
		if containerPorts[name] != port || host != "0.0.0.0" {
			t.Errorf("container port %s is %q; the configuration listens on %s (want 0.0.0.0:%s)", name, containerPorts[name], listen, containerPorts[name])
		}
	}
	if len(containerPorts) != 2 {
		t.Errorf("container ports %v, want admin and api", containerPorts)
	}
	// the Service and the scrape annotation: the admin port only
	svcPorts := list(m["Service"], "spec", "ports")
	if len(svcPorts) != 1 || str(svcPorts[0], "targetPort") != "admin" || str(svcPorts[0], "port") != containerPorts["admin"] {
		t.Errorf("the Service exposes %v, want the admin port (%s) only", svcPorts, containerPorts["admin"])
	}
	if p := str(m["Deployment"], "spec", "template", "metadata", "annotations", "prometheus.io/port"); p != containerPorts["admin"] {
		t.Errorf("prometheus.io/port %s, the admin port is %s", p, containerPorts["admin"])
	}

	// the rules: one per port, each from selected peers only
	peers := map[string][]any{} // port name -> peers
	for _, rule := range list(np, "spec", "ingress") {
		ports := list(rule, "ports")
		if len(list(rule, "from")) == 0 || len(ports) != 1 {
			t.Fatalf("an ingress rule %v: want selected peers and one port", rule)
		}
		port := str(ports[0], "port")
		if _, ok := containerPorts[port]; !ok {
			t.Errorf("the NetworkPolicy names port %s, which the container does not have (%v)", port, containerPorts)
		}
		peers[port] = append(peers[port], list(rule, "from")...)
	}
	if len(peers) != 2 || peers["admin"] == nil || peers["api"] == nil {
		t.Fatalf("the NetworkPolicy lets in %v, want exactly admin and api", peers)
	}
	labels := func(peer any, selector string) map[string]any {
		l, _ := at(peer, selector, "matchLabels").(map[string]any)
		return l
	}
	for _, p := range peers["admin"] {
		ns, pods := labels(p, "namespaceSelector"), labels(p, "podSelector")
		if at(p, "ipBlock") != nil || len(ns) == 0 || pods["app.kubernetes.io/name"] != "prometheus" {
			t.Errorf("admin port peer %v: want Prometheus pods (app.kubernetes.io/name: prometheus) of a selected namespace", p)
		}
	}
	for _, p := range peers["api"] {
		if at(p, "ipBlock") != nil || at(p, "namespaceSelector") != nil || len(labels(p, "podSelector")) == 0 {
			t.Errorf("api port peer %v: want labelled pods of the namespace", p)
		}
		for k := range labels(p, "podSelector") {
			if podLabels[k] != nil {
				t.Errorf("api port peer selects by %s, a label of consentd's own pods", k)
			}
		}
	}
}

// TestKubernetesTopics: an init container creates the topics with
// `consentd topics create --alter` (a policy's edited retention must not
// stop every new pod), with the container's configuration, secrets, image
// and hardening.
func TestKubernetesTopics(t *testing.T) {
	m := manifests(t)
	pod := at(m["Deployment"], "spec", "template", "spec")
	c := at(pod, "containers", 0)
	inits := list(pod, "initContainers")
	if len(inits) != 1 {
		t.Fatalf("%d init containers, want the topics one", len(inits))
	}
	ic := inits[0]
	args, runArgs := strs(list(ic, "args")), strs(list(c, "args"))
	if len(args) < 4 || args[0] != "topics" || args[1] != "create" || args[slices.Index(args, "--config")+1] != runArgs[slices.Index(runArgs, "--config")+1] {
		t.Errorf("init container runs %v, want topics create with the container's --config", args)
	}
	if !slices.Contains(args, "--alter") {
		t.Errorf("init container runs %v, without --alter: a topic whose settings differ from the policy's stops every new pod", args)
	}
	if str(ic, "image") != str(c, "image") {
		t.Errorf("init container image %s, consentd's %s", str(ic, "image"), str(c, "image"))
	}
	b1, _ := json.Marshal(at(ic, "volumeMounts"))
	b2, _ := json.Marshal(at(c, "volumeMounts"))
	s1, _ := json.Marshal(at(ic, "securityContext"))
	s2, _ := json.Marshal(at(c, "securityContext"))
	if string(b1) != string(b2) || string(s1) != string(s2) {
		t.Errorf("the init container's mounts %s or security context %s differ from consentd's (%s, %s)", b1, s1, b2, s2)
	}
}

// TestKubernetesSecretPlaceholdersAreRefused loads the configuration with
// the Secret's placeholder values as files: consentd must refuse to start
// rather than run with them.
func TestKubernetesSecretPlaceholdersAreRefused(t *testing.T) {
	m := manifests(t)
	dir := t.TempDir()
	for k, v := range at(m["Secret"], "stringData").(map[string]any) {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v.(string)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgText := strings.ReplaceAll(str(m["ConfigMap"], "data", "consentd.yaml"), "/var/run/secrets/consentd", dir)
	cfgPath := filepath.Join(dir, "consentd.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(str(m["ConfigMap"], "data", "policy.yaml")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.Load(cfgPath)
	if err == nil || !strings.Contains(err.Error(), "admin.token_file: the token must be at least 16 characters") {
		t.Fatalf("placeholder token: %v", err)
	}
	bin := consentdBinary(t)
	out, err := exec.Command(bin, "policy", "check", filepath.Join(dir, "policy.yaml"), "--keys", filepath.Join(dir, "pseudonym.keys")).CombinedOutput()
	if err == nil {
		t.Fatalf("the placeholder key file was accepted: %s", out)
	}
}

// TestKubernetesAuditCronJob: the audit CronJob runs consentd audit with
// the Deployment's configuration and secrets, mounted the same way, one
// run at a time, and fails (no retries hiding a finding) when the audit
// does.
func TestKubernetesAuditCronJob(t *testing.T) {
	m := manifests(t)
	dep := at(m["Deployment"], "spec", "template", "spec")
	job := readYAML(t, "kubernetes/audit-cronjob.yaml")
	if str(job, "kind") != "CronJob" || str(job, "spec", "concurrencyPolicy") != "Forbid" || str(job, "spec", "jobTemplate", "spec", "backoffLimit") != "0" {
		t.Fatalf("audit-cronjob.yaml: kind %s, concurrencyPolicy %s, backoffLimit %s", str(job, "kind"), str(job, "spec", "concurrencyPolicy"), str(job, "spec", "jobTemplate", "spec", "backoffLimit"))
	}
	pod := at(job, "spec", "jobTemplate", "spec", "template", "spec")
	c := at(pod, "containers", 0)
	args := strs(list(c, "args"))
	depArgs := strs(list(at(dep, "containers", 0), "args"))
	if len(args) < 3 || args[0] != "audit" || args[slices.Index(args, "--config")+1] != depArgs[slices.Index(depArgs, "--config")+1] {
		t.Errorf("the CronJob runs %v; want audit with the Deployment's --config (%v)", args, depArgs)
	}
	if str(pod, "restartPolicy") != "Never" || str(pod, "securityContext", "runAsNonRoot") != "true" || str(c, "securityContext", "readOnlyRootFilesystem") != "true" {
		t.Error("the audit pod restarts, or runs as root or on a writable root file system")
	}
	mounts := map[string]string{}
	for _, vm := range list(at(dep, "containers", 0), "volumeMounts") {
		mounts[str(vm, "name")] = str(vm, "mountPath")
	}
	for _, vm := range list(c, "volumeMounts") {
		if mounts[str(vm, "name")] != str(vm, "mountPath") || str(vm, "readOnly") != "true" {
			t.Errorf("volume %s: mounted at %s (the Deployment: %s), read-only %s", str(vm, "name"), str(vm, "mountPath"), mounts[str(vm, "name")], str(vm, "readOnly"))
		}
	}
	vols := func(spec any) string {
		b, _ := json.Marshal(at(spec, "volumes"))
		return string(b)
	}
	if vols(pod) != vols(dep) {
		t.Errorf("the CronJob's volumes %s differ from the Deployment's %s", vols(pod), vols(dep))
	}
}

// TestKubernetesServiceLinksDoNotStopConsentd: Kubernetes puts
// NAME_SERVICE_HOST, NAME_PORT... of every Service of the namespace into
// every pod unless enableServiceLinks is false; the shipped Service's
// (consentd-metrics → CONSENTD_METRICS_*) start with consentd's own
// prefix. The pods turn them off, and consentd ignores them anyway: the
// Deployment's configuration loads with them set.
func TestKubernetesServiceLinksDoNotStopConsentd(t *testing.T) {
	m := manifests(t)
	job := readYAML(t, "kubernetes/audit-cronjob.yaml")
	for name, pod := range map[string]any{"Deployment": at(m["Deployment"], "spec", "template", "spec"), "CronJob": at(job, "spec", "jobTemplate", "spec", "template", "spec")} {
		if str(pod, "enableServiceLinks") != "false" {
			t.Errorf("%s: enableServiceLinks is not false", name)
		}
	}
	c := at(m["Deployment"], "spec", "template", "spec", "containers", 0)
	for _, e := range list(c, "env") {
		if v, ok := at(e, "value").(string); ok {
			t.Setenv(str(e, "name"), v)
		}
	}
	svc := m["Service"]
	prefix := strings.ToUpper(strings.ReplaceAll(str(svc, "metadata", "name"), "-", "_"))
	if !strings.HasPrefix(prefix+"_", config.EnvPrefix) {
		t.Logf("the Service %s does not share consentd's prefix", prefix)
	}
	for _, p := range list(svc, "spec", "ports") {
		port := str(p, "port")
		t.Setenv(prefix+"_SERVICE_HOST", "10.96.0.12")
		t.Setenv(prefix+"_SERVICE_PORT", port)
		t.Setenv(prefix+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(str(p, "name"), "-", "_")), port)
		t.Setenv(prefix+"_PORT", "tcp://10.96.0.12:"+port)
		t.Setenv(prefix+"_PORT_"+port+"_TCP", "tcp://10.96.0.12:"+port)
		t.Setenv(prefix+"_PORT_"+port+"_TCP_ADDR", "10.96.0.12")
		t.Setenv(prefix+"_PORT_"+port+"_TCP_PORT", port)
		t.Setenv(prefix+"_PORT_"+port+"_TCP_PROTO", "tcp")
	}
	args := strs(list(c, "args"))
	cfgName := filepath.Base(args[slices.Index(args, "--config")+1])
	path := filepath.Join(t.TempDir(), cfgName)
	if err := os.WriteFile(path, []byte(str(m["ConfigMap"], "data", cfgName)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The secrets the pod mounts, here as files of the test's.
	for _, v := range []string{"CONSENTD_ADMIN_TOKEN_FILE", "CONSENTD_PSEUDONYMIZATION_KEY_FILE", "CONSENTD_REDIS_PASSWORD_FILE", "CONSENTD_KAFKA_SASL_PASSWORD_FILE"} {
		f := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(f, []byte("k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv(v, f)
	}
	if _, err := config.Load(path); err != nil {
		t.Fatalf("with the Service's links in the environment: %v", err)
	}
}
