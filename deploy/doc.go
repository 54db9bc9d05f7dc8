// Package deploy holds what it takes to run s3seal besides the request path
// in proxy/: the deployment files, which are not Go (a container image in
// docker/, Kubernetes manifests for a sidecar and a scaled-out Deployment in
// k8s/, a hardened systemd unit in systemd/; README.md says which to use
// when), and the packages the commands use to run it: certificates
// (tlsconf), systemd readiness notification (sdnotify), the key-rotation
// engine of "s3seal rewrap" (rewrap) and the demo's embedded store
// (demostore).
//
// Its tests check them: the configuration examples load with s3seal's own
// configuration loader (always), and, in the integration suite
// (S3SEAL_INTEGRATION=1), the unit passes systemd-analyze, the manifests
// pass the Kubernetes API server's validation and the Dockerfile BuildKit's
// lint (both through the nested module in check/, which pins those tools),
// the binary is static, and s3seal talks sd_notify to a service manager.
package deploy
