#!/usr/bin/env bash
# Builds a real kube-apiserver and kube-controller-manager (Kubernetes 1.20.2, Debian bookworm's
# source package, offline with Debian's Go) once, into a cache outside the checkout, for the tests
# that run the Kubernetes driver against a real API server (issue 20). No package ships the
# binaries; the source package carries its whole vendor/ tree. Uses sudo for apt-get when not root.
#
#   scripts/kube-apiserver-build.sh        prints the folder holding the two binaries
#
# DEVEX_TOOLS_CACHE (default ~/.cache/devex-tools) keeps the result; a second run only prints it.
# The first build took 11.5 minutes on two cores (apt-get, download and Go build), a rerun nothing.
set -euo pipefail

version=1.20.2
cache="${DEVEX_TOOLS_CACHE:-$HOME/.cache/devex-tools}/kubernetes-$version"
bin="$cache/bin"
if [[ -x "$bin/kube-apiserver" && -x "$bin/kube-controller-manager" ]]; then
  echo "$bin"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
# The source package comes from the same mirror apt already uses, as a deb-src line of its own.
if ! grep -rqs "^Types: deb-src" /etc/apt/sources.list.d/; then
  $sudo tee /etc/apt/sources.list.d/devex-kubernetes-src.sources >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  $sudo apt-get update -qq
fi
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  dpkg-dev golang-go rsync jq golang-github-modern-go-reflect2-dev etcd-server >/dev/null

work="$cache/src"
rm -rf "$work"
mkdir -p "$work"
(cd "$work" && apt-get source -qq --download-only kubernetes >/dev/null && dpkg-source -x --no-check ./kubernetes_*.dsc src >/dev/null)
src="$work/src"

# reflect2 1.0.1 (vendored) crashes the apiserver under Go 1.19 in mapiternext; Debian's 1.0.2 does not.
rm -rf "$src/vendor/github.com/modern-go/reflect2"
mkdir -p "$src/vendor/github.com/modern-go/reflect2"
find /usr/share/gocode/src/github.com/modern-go/reflect2/ -maxdepth 1 -type f -name '*.go' ! -name '*_test.go' \
  -exec cp {} "$src/vendor/github.com/modern-go/reflect2/" \;

(
  cd "$src"
  GOPATH="$work/gopath" GOCACHE="$work/gocache" CGO_ENABLED=0 GOPROXY=off GOFLAGS=-mod=vendor \
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$work/build.log" 2>&1
)
mkdir -p "$bin"
cp "$src/_output/bin/kube-apiserver" "$src/_output/bin/kube-controller-manager" "$bin/"
rm -rf "$work"
echo "$bin"
