# syntax=docker/dockerfile:1.7
# Devex runner: the per-repl sandbox service, shipping the lib/sync CLI that the Kubernetes driver's
# restore init container and persist ephemeral container run (/app/dist/sync/cli.mjs).
# Targets: runner-base, runner-node (default), runner-python. Build from the repository root:
#   docker build -f infra/docker/runner.Dockerfile --target runner-node   -t ghcr.io/devex/runner-node:dev .
#   docker build -f infra/docker/runner.Dockerfile --target runner-python -t ghcr.io/devex/runner-python:dev .
# /app holds the runner and sync bundles (dist/runner, dist/sync, from scripts/build.mjs) and of
# node_modules only the native addon they leave outside: @lydell/node-pty and its platform package.
# Source maps stay beside the bundles, so a minified stack trace maps back to the sources: offline
# from a log, or live with NODE_OPTIONS=--enable-source-maps (off by default: ~18 MB more per runner).
ARG NODE_IMAGE=node:20.20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# Set only where npm reaches its registry through a TLS-inspecting proxy (scripts/images.sh passes
# the host's bundle); build steps see it, the image does not keep it.
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
# No scripts: the postinstall builds every target, and the sources are not here yet. npm installs
# node-pty's prebuilt binary for this platform only (@lydell/node-pty-linux-x64 or -arm64).
RUN --mount=type=cache,target=/root/.npm npm install --ignore-scripts --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY scripts/build.mjs scripts/build.mjs
COPY gen gen
COPY lib lib
COPY services/runner services/runner
# The runner's V8 code caches (lib/kit/code-cache.mjs) hold this stage's Node's compiled code: the
# stage below runs the same NODE_IMAGE, or V8 would refuse them and compile as if there were none.
RUN node scripts/build.mjs runner sync && rm dist/runner/meta.json dist/sync/meta.json

# What every repl gets: a shell, git, certificates, the runner and the sync CLI. The user is
# devex (1000) with HOME /home/devex; in Kubernetes the root filesystem is read-only and
# /workspaces (the runner sees its repl's folder of it at /workspace), /home/devex and /tmp are
# emptyDir volumes. The project and the home are at the same paths as in the local driver's sandbox.
FROM ${NODE_IMAGE} AS runner-base
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash ca-certificates curl git less procps tini \
 && rm -rf /var/lib/apt/lists/* \
 && usermod --login devex --move-home --home /home/devex node \
 && groupmod --new-name devex node \
 && install -d -o 1000 -g 1000 /workspaces /workspace /var/lib/devex-sync
ENV NODE_ENV=production \
    HOME=/home/devex \
    SHELL=/bin/bash \
    DEVEX_RUNNER_HOST=0.0.0.0 \
    DEVEX_RUNNER_PORT=8090
WORKDIR /app
COPY infra/docker/image-package.json ./package.json
COPY --from=build /app/node_modules/@lydell ./node_modules/@lydell
COPY --from=build /app/dist/sync ./dist/sync
COPY --from=build /app/dist/runner ./dist/runner
USER 1000:1000
WORKDIR /workspace
EXPOSE 8090
ENTRYPOINT ["/usr/bin/tini", "--"]
# The flags of lib/contracts/runner-node-flags.mjs, which core's local pool passes too.
CMD ["node", "--max-semi-space-size=1", "--optimize-for-size", "--v8-pool-size=1", "/app/dist/runner/main.mjs"]

# Python repls: python3 with pip and venv.
FROM runner-base AS runner-python
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/python3 /usr/local/bin/python
USER 1000:1000

# Node.js repls (the default target): the runtime is already there; global installs go to HOME.
FROM runner-base AS runner-node
ENV COREPACK_HOME=/home/devex/.cache/corepack \
    NPM_CONFIG_PREFIX=/home/devex/.npm-global \
    PATH=/home/devex/.npm-global/bin:$PATH
