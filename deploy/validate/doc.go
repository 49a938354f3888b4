// Package validate holds the tests of ferry's deployment files: the
// Containerfile, the Kubernetes manifests (deploy/kubernetes), the values
// for the NATS Helm chart (deploy/nats) and the systemd unit
// (deploy/systemd). It is a module of its own so that the Kubernetes and
// KEDA API types it decodes the manifests into stay out of ferry's go.mod;
// `make test` runs it (see docs/deploy.md, "How the files are tested").
//
// Everything runs offline: the manifests are decoded strictly into the
// k8s.io/api and KEDA Go types (an unknown or misspelt field is an error),
// every ferry command line they contain is parsed by ferry's own CLI, and
// the KEDA trigger's query is run against a real NATS server.
package validate
