#!/usr/bin/env bash
# Builds Devex's container images with Podman from infra/docker/*.Dockerfile, and prints their sizes.
#
#   scripts/images.sh [--base auto|registry|debian] [image...]
#
# Images: runner-node runner-python core mcp egress (default: all), tagged localhost/devex/<image>:dev
# (DEVEX_IMAGE_TAG changes the tag). Every Dockerfile builds FROM ${NODE_IMAGE}:
# - registry: node:20.20-bookworm-slim from Docker Hub;
# - debian: a base made here, for machines that reach no registry: Debian bookworm minbase with its
#   updates and security updates (mmdebstrap; DEVEX_DEBIAN_MIRROR and DEVEX_DEBIAN_SECURITY_MIRROR
#   name other mirrors, which the images then keep in their apt sources), this machine's Node 20.20
#   (binary, npm, corepack) at the official image's paths, and its user node (1000). Tagged
#   localhost/devex/node-base:<node version>-<recipe hash>, built once and reused. Slim as Debian's
#   own images: no docs, manuals or translations, no apt caches;
# - auto (default): whichever is here already, else the registry's if it can be pulled within 30 s,
#   else the Debian one.
# Behind a TLS-inspecting proxy, npm's build step trusts DEVEX_BUILD_CA or NODE_EXTRA_CA_CERTS (a
# bundle file), mounted for the build only. scripts/images.e2e.test.ts builds and runs them.
# Needs podman and, for the Debian base, mmdebstrap (scripts/install-system-deps.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."

base=auto
if [[ "${1:-}" == "--base" ]]; then
  base="${2:?--base takes auto, registry or debian}"
  shift 2
fi
images=("$@")
[[ ${#images[@]} -gt 0 ]] || images=(runner-node runner-python core mcp egress)
tag="${DEVEX_IMAGE_TAG:-dev}"
say() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

command -v podman >/dev/null || { echo "podman is not installed (scripts/install-system-deps.sh installs it)" >&2; exit 1; }

registry_image=docker.io/library/node:20.20-bookworm-slim
node_version="$(node -p 'process.versions.node')"
debian_mirror="${DEVEX_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${DEVEX_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
base_tar=""
trap '[[ -z "$base_tar" ]] || rm -f "$base_tar"' EXIT

debian_base() {
  command -v mmdebstrap >/dev/null || { echo "mmdebstrap is not installed" >&2; exit 1; }
  # The Dockerfiles name node:20.20 and the base carries this machine's Node.
  [[ "$node_version" == 20.20.* ]] || {
    echo "the Debian base takes this machine's Node, $node_version; the images are built for 20.20 (use --base registry)" >&2
    exit 1
  }
  local node npm corepack
  node="$(readlink -f "$(command -v node)")"
  npm="$(readlink -f "$(dirname "$(readlink -f "$(command -v npm)")")/..")"
  corepack="$(dirname "$npm")/corepack"
  say "making $debian_image: Debian bookworm minbase with Node $node_version (mmdebstrap, about a minute)"
  base_tar="$(mktemp --suffix=.tar)"
  # The official image's layout: node, npm and corepack under /usr/local, user and group node (1000).
  # Slim as Debian's own images are: no documentation, manual pages or translations (dpkg skips
  # them for every package installed later too), and apt keeps no package files or caches.
  # Sources: bookworm with its updates and security updates, so packages installed on top are current.
  mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --aptopt='DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; }' \
    --aptopt='Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' \
    --customize-hook="mkdir -p \"\$1/usr/local/bin\" \"\$1/usr/local/lib/node_modules\"" \
    --customize-hook="copy-in $node /usr/local/bin" \
    --customize-hook="copy-in $npm $corepack /usr/local/lib/node_modules" \
    --customize-hook="chroot \"\$1\" ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm" \
    --customize-hook="chroot \"\$1\" ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx" \
    --customize-hook="chroot \"\$1\" ln -s ../lib/node_modules/corepack/dist/corepack.js /usr/local/bin/corepack" \
    --customize-hook="chroot \"\$1\" groupadd --gid 1000 node" \
    --customize-hook="chroot \"\$1\" useradd --uid 1000 --gid node --shell /bin/bash --create-home node" \
    --customize-hook="rm -rf \"\$1\"/var/lib/apt/lists/* \"\$1\"/var/cache/apt/*" \
    bookworm "$base_tar" \
    "deb $debian_mirror bookworm main" "deb $debian_mirror bookworm-updates main" \
    "deb $security_mirror bookworm-security main"
  podman import --change 'CMD ["node"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=$node_version" "$base_tar" "$debian_image" >/dev/null
  rm -f "$base_tar"
  # It runs: Node, npm and the user the Dockerfiles expect (low limits: Podman's defaults can exceed the host's).
  podman run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$debian_image" \
    sh -c 'node -v && npm -v >/dev/null && corepack -v >/dev/null && id -u node' |
    tr '\n' ' ' | grep -qx "v$node_version 1000 " || {
    podman rmi "$debian_image" >/dev/null
    echo "the base made from the Debian mirror does not run node, npm or corepack, or lacks user node (1000)" >&2
    exit 1
  }
}
# The recipe is in the tag: a changed recipe makes a new base, rather than reusing the old one.
debian_image="localhost/devex/node-base:$node_version-$(declare -f debian_base | sha256sum | cut -c1-12)"

case "$base" in
  registry) node_image="$registry_image" ;;
  debian)
    podman image exists "$debian_image" || debian_base
    node_image="$debian_image"
    ;;
  auto)
    if podman image exists "$registry_image"; then
      node_image="$registry_image"
    elif podman image exists "$debian_image"; then
      node_image="$debian_image"
    elif timeout 30 podman pull -q "$registry_image" >/dev/null 2>&1; then
      node_image="$registry_image"
    else
      say "no registry answered: the base is made from the Debian mirror"
      debian_base
      node_image="$debian_image"
    fi
    ;;
  *) echo "--base is auto, registry or debian, not $base" >&2; exit 2 ;;
esac

# A TLS-inspecting proxy between npm and its registry: the build steps trust what this machine trusts.
ca_args=()
ca="${DEVEX_BUILD_CA:-${NODE_EXTRA_CA_CERTS:-}}"
if [[ -f "$ca" ]]; then
  ca_args=(--volume "$(readlink -f "$ca"):/run/devex-build-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/devex-build-ca.crt)
fi

for image in "${images[@]}"; do
  case "$image" in
    runner-node | runner-python) file=runner target="$image" ;;
    core | mcp | egress) file="$image" target="$image" ;;
    *) echo "unknown image $image (runner-node runner-python core mcp egress)" >&2; exit 2 ;;
  esac
  say "building localhost/devex/$image:$tag from $node_image"
  started=$SECONDS
  # The build steps use the host's network: Podman's default bridge would turn on the host's IP
  # forwarding and add NAT rules for them.
  podman build --quiet --layers --network host \
    --file "infra/docker/$file.Dockerfile" --ignorefile "infra/docker/$file.Dockerfile.dockerignore" \
    --build-arg NODE_IMAGE="$node_image" "${ca_args[@]}" --target "$target" \
    --tag "localhost/devex/$image:$tag" . >/dev/null
  say "built localhost/devex/$image:$tag in $((SECONDS - started)) s"
done

printf '%-32s %10s\n' image size
for image in "${images[@]}"; do
  printf '%-32s %10s\n' "localhost/devex/$image:$tag" \
    "$(podman image inspect --format '{{.Size}}' "localhost/devex/$image:$tag" | awk '{printf "%.0f MB", $1/1e6}')"
done
