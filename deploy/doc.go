// Package deploy holds what it takes to run s3seal besides the request path
// in proxy/: the deployment files, which are not Go (a container image in
// docker/, from source and in a release form; Kubernetes manifests for a
// sidecar patch and a scaled-out Deployment in k8s/; a Helm chart in helm/;
// a Grafana dashboard in grafana/; a hardened systemd unit in systemd/;
// README.md says which to use when), and the packages the commands use to
// run it: certificates
// (tlsconf), systemd readiness notification (sdnotify), the key-rotation
// engine of "s3seal rewrap" (rewrap) and the demo's embedded store
// (demostore).
//
// Its tests check them: the configuration examples load with s3seal's own
// configuration loader (always), and, in the integration suite
// (S3SEAL_INTEGRATION=1), the unit passes systemd-analyze, the manifests
// (plain, patched, and rendered from the chart) pass the Kubernetes API
// server's validation and the Dockerfiles BuildKit's lint (both through the
// nested module in check/, which pins those tools), the image builds and
// serves under podman, the binary is static, and s3seal talks sd_notify to
// a service manager.
package deploy
