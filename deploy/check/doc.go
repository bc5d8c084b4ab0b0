// Package check parses the deployment files in deploy/ with the real
// tools' own parsers and checks what they must say: the Kubernetes
// manifests decoded strictly into k8s.io/api types, the compose file
// loaded by compose-go, the Dockerfile by BuildKit's parser, the systemd
// unit by systemd-analyze verify; and every switchyard flag they pass is
// one the binary knows. It is a module of its own so that these heavy
// dependencies never enter the product's go.mod. Run by make deploy-check.
package check
