#!/usr/bin/env bash
# Installs the pinned servers and clients that s3seal's integration suite runs
# against into a cache directory outside the repository, reusing binaries that
# are already there. Safe to run repeatedly; prints the bin directory it filled.
#
#   S3SEAL_TESTBED_DIR   cache root (default: $XDG_CACHE_HOME/s3seal-testbed or ~/.cache/s3seal-testbed)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="${S3SEAL_TESTBED_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/s3seal-testbed}"
bin="$root/bin"
mkdir -p "$bin"

# Pinned versions. Change them here only; the stamp files make a pin change
# trigger a rebuild.
MINIO=github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
VERSITYGW=github.com/versity/versitygw/cmd/versitygw@v1.8.0
PEBBLE=github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3
CHALLTESTSRV=github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@v2.10.3
MC=github.com/minio/mc@v0.0.0-20250313080218-cf909e1063a9
# Caddy is the second "any TLS reverse proxy" reference of the benchmarks
# (integration/bench); nginx, the first, comes from the distribution.
CADDY=github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9
STATICCHECK=honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Helm lints and renders the chart in deploy/helm (deploy/helm_test.go).
HELM=helm.sh/helm/v4/cmd/helm@v4.3.2
# The Docker registry of the client matrix (integration/clients_test.go),
# with its S3 storage driver pointed at s3seal.
REGISTRY=github.com/distribution/distribution/v3/cmd/registry@v3.0.0

log() { printf 'testbed: %s\n' "$*" >&2; }

# goinstall NAME PKG@VERSION: go install into $bin unless the same pin is there.
goinstall() {
  local name="$1" spec="$2" stamp="$bin/.$1.pin"
  if [[ -x "$bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$spec" ]]; then
    return 0
  fi
  log "installing $spec (this can take minutes the first time)"
  local start=$SECONDS
  GOBIN="$bin" GOFLAGS=-buildvcs=false CGO_ENABLED=0 go install "$spec"
  printf '%s' "$spec" >"$stamp"
  log "installed $name in $((SECONDS - start))s"
}

# The loopback wrapper around local-kms lives in its own module in the
# repository so its dependencies stay out of s3seal's go.mod.
kmsinstall() {
  local src="$here/localkms" stamp="$bin/.localkms.pin" sum
  sum="$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -c1-16)"
  if [[ -x "$bin/s3seal-localkms" && -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
    return 0
  fi
  log "installing local-kms (loopback wrapper)"
  local start=$SECONDS
  (cd "$src" && GOFLAGS=-buildvcs=false CGO_ENABLED=0 go build -trimpath -o "$bin/.s3seal-localkms.tmp" .)
  mv -f "$bin/.s3seal-localkms.tmp" "$bin/s3seal-localkms"
  printf '%s' "$sum" >"$stamp"
  log "installed s3seal-localkms in $((SECONDS - start))s"
}

# aptinstall CHECK:PACKAGE...: installs each PACKAGE whose CHECK is missing.
# CHECK is a command on PATH, or an absolute path pattern (for packages
# whose programs live off PATH, such as PostgreSQL's server).
aptinstall() {
  local missing=()
  for p in "$@"; do
    local check="${p%%:*}"
    if [[ "$check" == /* ]]; then
      compgen -G "$check" >/dev/null && continue
    else
      command -v "$check" >/dev/null 2>&1 && continue
    fi
    missing+=("${p#*:}")
  done
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    log "missing ${missing[*]}; install them with apt-get (needs root)"
    return 1
  fi
  log "apt-get install ${missing[*]}"
  # Packaged servers (nginx) must not start as system services listening on
  # every interface: the test bed runs them itself, on loopback. A
  # policy-rc.d that answers 101 keeps invoke-rc.d from starting them.
  local policy=/usr/sbin/policy-rc.d added=0 rc=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || rc=$?
  if ((rc == 0)); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
  fi
  if ((added)); then rm -f "$policy"; fi
  return $rc
}

# containers installs what builds and runs s3seal's image and checks its
# Helm chart: Debian's podman with runc (crun, podman's default runtime,
# fails on these machines' rlimits and cgroups; deploy/image_test.go runs
# podman with --runtime runc) and Helm.
containers() {
  aptinstall podman:podman runc:runc
  goinstall helm "$HELM"
}

# The client matrix's tools from the distribution: restic, rclone, boto3
# (the distribution's python3, which barman's cloud tools use too),
# barman-cli-cloud and a PostgreSQL server for it to back up.
clientsinstall() {
  aptinstall restic:restic /usr/lib/python3/dist-packages/boto3:python3-boto3 \
    barman-cloud-backup:barman-cli-cloud '/usr/lib/postgresql/*/bin/initdb:postgresql'
}

what="${1:-all}"
case "$what" in
  all)
    # Quick ones first so a failure shows early; MinIO last (slowest).
    kmsinstall
    goinstall versitygw "$VERSITYGW"
    goinstall pebble "$PEBBLE"
    goinstall pebble-challtestsrv "$CHALLTESTSRV"
    goinstall mc "$MC"
    goinstall minio "$MINIO"
    goinstall caddy "$CADDY"
    goinstall staticcheck "$STATICCHECK"
    goinstall registry "$REGISTRY"
    aptinstall s3cmd:s3cmd rclone:rclone aws:awscli nginx:nginx
    # Key providers: a KMIP server, a software PKCS#11 token and its
    # tools, and the C compiler of the HSM build (cgo) and of p11spy.
    aptinstall pykmip-server:python3-pykmip softhsm2-util:softhsm2 pkcs11-tool:opensc cc:gcc
    clientsinstall
    containers
    ;;
  containers)
    # Only what the container image and Helm chart tests need.
    containers
    ;;
  keys)
    # Only the key providers' servers and tools.
    aptinstall pykmip-server:python3-pykmip softhsm2-util:softhsm2 pkcs11-tool:opensc cc:gcc
    ;;
  clients)
    # Only what the client matrix needs beyond the suite's servers.
    goinstall registry "$REGISTRY"
    aptinstall s3cmd:s3cmd rclone:rclone aws:awscli
    clientsinstall
    ;;
  bench)
    # Only what integration/bench needs beyond the suite's servers.
    goinstall minio "$MINIO"
    goinstall caddy "$CADDY"
    aptinstall nginx:nginx
    ;;
  *) echo "usage: $0 [all|bench|containers|keys|clients]" >&2; exit 2 ;;
esac
echo "$bin"
