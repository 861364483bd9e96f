// Package deploy holds Glimpse's deployment files: a multi-stage Dockerfile, a compose file
// (3-node NATS JetStream cluster, PostgreSQL, versitygw as the S3 server, api, workers,
// autoscaler) and Kubernetes manifests (with a KEDA example). It has no Go code of its own; its
// test parses every file strictly, into the real Kubernetes API types where they exist, and
// checks that they agree with each other and with the flags of the glimpse binary.
package deploy
