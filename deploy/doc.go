// Package deploy holds no code: it is the home of the operations package
// (Prometheus configuration and alert rules, Grafana provisioning and
// dashboard, Kubernetes manifests) and of the tests that check it, the
// docker-compose.yml, the Dockerfile and the .dockerignore against each
// other and against the metrics consentd exports. Production code never
// imports it.
package deploy
