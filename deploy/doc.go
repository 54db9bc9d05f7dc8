// Package deploy holds s3seal's deployment files, which are not Go: a
// container image (docker/), Kubernetes manifests for a sidecar and a
// scaled-out Deployment (k8s/), and a hardened systemd unit (systemd/).
// README.md says which to use when.
//
// Its tests check them: the configuration examples load with s3seal's own
// configuration loader (always), and, in the integration suite
// (S3SEAL_INTEGRATION=1), the unit passes systemd-analyze, the manifests
// pass the Kubernetes API server's validation and the Dockerfile BuildKit's
// lint (both through the nested module in check/, which pins those tools),
// the binary is static, and s3seal talks sd_notify to a service manager.
package deploy
