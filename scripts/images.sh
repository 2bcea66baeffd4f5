#!/usr/bin/env bash
# Builds Devex's container images with Podman from infra/docker/*.Dockerfile, and prints their sizes.
#
#   scripts/images.sh [--base auto|registry|debian] [image...]
#
# Images: runner-node runner-python core mcp egress (default: all), tagged localhost/devex/<image>:dev
# (DEVEX_IMAGE_TAG changes the tag). Every Dockerfile builds FROM ${NODE_IMAGE}:
# - registry: node:20.20-bookworm-slim from Docker Hub;
# - debian: a base made here, for machines that reach no registry: Debian bookworm minbase from the
#   mirror apt already uses (mmdebstrap), this machine's Node (binary and npm) at the official
#   image's paths, and its user node (1000). Tagged localhost/devex/node-base:<node version>, built
#   once and reused. Slim as Debian's own images: no docs, manuals or translations, no apt caches;
# - auto (default): the registry's if it can be pulled within 30 s, else the Debian one.
# Behind a TLS-inspecting proxy, npm's build step trusts DEVEX_BUILD_CA or NODE_EXTRA_CA_CERTS (a
# bundle file), mounted for the build only. scripts/images.e2e.test.ts builds and runs them.
# Needs podman and, for the Debian base, mmdebstrap (scripts/install-system-deps.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."

base=auto
if [[ "${1:-}" == "--base" ]]; then
  base="$2"
  shift 2
fi
images=("$@")
[[ ${#images[@]} -gt 0 ]] || images=(runner-node runner-python core mcp egress)
tag="${DEVEX_IMAGE_TAG:-dev}"
say() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

command -v podman >/dev/null || { echo "podman is not installed (scripts/install-system-deps.sh installs it)" >&2; exit 1; }

registry_image=docker.io/library/node:20.20-bookworm-slim
node_version="$(node -p 'process.versions.node')"
debian_image="localhost/devex/node-base:$node_version"

debian_base() {
  if podman image exists "$debian_image"; then return; fi
  command -v mmdebstrap >/dev/null || { echo "mmdebstrap is not installed" >&2; exit 1; }
  local node npm tar
  tar="$(mktemp --suffix=.tar)"
  trap 'rm -f "$tar"' EXIT
  node="$(command -v node)"
  npm="$(dirname "$(readlink -f "$(command -v npm)")")/.."
  say "making $debian_image: Debian bookworm minbase with Node $node_version (mmdebstrap, about a minute)"
  # The official image's layout: node and npm under /usr/local, user and group node (1000).
  # Slim as Debian's own images are: no documentation, manual pages or translations (dpkg skips
  # them for every package installed later too), and apt keeps no package files or caches.
  mmdebstrap --quiet --variant=minbase --include=ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --aptopt='DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; }' \
    --aptopt='Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' \
    --customize-hook="mkdir -p \"\$1/usr/local/bin\" \"\$1/usr/local/lib/node_modules\"" \
    --customize-hook="copy-in $node /usr/local/bin" \
    --customize-hook="copy-in $(readlink -f "$npm") /usr/local/lib/node_modules" \
    --customize-hook="chroot \"\$1\" ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm" \
    --customize-hook="chroot \"\$1\" ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx" \
    --customize-hook="chroot \"\$1\" groupadd --gid 1000 node" \
    --customize-hook="chroot \"\$1\" useradd --uid 1000 --gid node --shell /bin/bash --create-home node" \
    --customize-hook="rm -rf \"\$1\"/var/lib/apt/lists/* \"\$1\"/var/cache/apt/*" \
    bookworm "$tar" "$(mirror)"
  podman import --change 'CMD ["node"]' "$tar" "$debian_image" >/dev/null
}

# DEVEX_DEBIAN_MIRROR, else the Debian mirror apt uses here (deb822 or one-line sources), else Debian's own.
mirror() {
  local uri
  uri="${DEVEX_DEBIAN_MIRROR:-$(grep -rhsoE '^(URIs: |deb )https?://[^ ]+/debian/?$' /etc/apt/sources.list /etc/apt/sources.list.d/ |
    head -1 | sed -E 's/^(URIs: |deb )//')}"
  echo "${uri:-http://deb.debian.org/debian}"
}

case "$base" in
  registry) node_image="$registry_image" ;;
  debian) debian_base; node_image="$debian_image" ;;
  auto)
    if podman image exists "$registry_image" || timeout 30 podman pull -q "$registry_image" >/dev/null 2>&1; then
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
  podman build --quiet --layers \
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
