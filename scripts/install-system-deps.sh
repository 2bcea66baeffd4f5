#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Devex's tests use: redis-server (state store tests), bubblewrap
# (sandboxed runners), python3-grpcio (an independent gRPC client), chromium (browser tests), vim-tiny
# and procps (vi and top, the full-screen programs the terminal replay tests run), passt, nftables,
# iproute2 and openssl (repls' egress path and the tests' own internet: pasta, nft, ip, a test certificate),
# python3-protobuf, protobuf-compiler and libprotobuf-dev (the Python gRPC example: protoc and the
# well-known types it compiles against), unzip (the zip archives of folder downloads are checked with it),
# podman, runc and mmdebstrap (scripts/images.sh builds and runs the container images; runc rather
# than crun, which refuses cgroup v1 machines like these), rclone (the baseline the lifecycle and
# checkpoints benches copy workspaces to s3rver with);
# then kube-apiserver and kube-controller-manager (scripts/kube-apiserver-build.sh, with etcd).
# Uses sudo when not root; does nothing when everything is already there.
set -euo pipefail
packages=(redis-server bubblewrap python3-grpcio python3-protobuf protobuf-compiler libprotobuf-dev chromium vim-tiny procps passt nftables iproute2 openssl unzip podman runc mmdebstrap rclone)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# A real Kubernetes control plane for the driver's tests (k8s-real-api.e2e): built once, cached
# outside the checkout (the first time about 12 minutes, then nothing).
"$(dirname "$0")/kube-apiserver-build.sh" >/dev/null
