# syntax=docker/dockerfile:1.7
# Devex core (control plane). Build from the repository root:
#   docker build -f infra/docker/core.Dockerfile -t ghcr.io/devex/core:dev .
# The image holds the core bundle (dist/core, from scripts/build.mjs) and the templates, no node_modules.
# Source maps stay beside the bundles, so a minified stack trace maps back to the sources: offline
# from a log, or live with NODE_OPTIONS=--enable-source-maps (off by default: ~18 MB more per runner).
ARG NODE_IMAGE=node:20.20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# Set only where npm reaches its registry through a TLS-inspecting proxy (scripts/images.sh passes
# the host's bundle); build steps see it, the image does not keep it.
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
# No scripts: the postinstall builds every target, and the sources are not here yet.
RUN --mount=type=cache,target=/root/.npm npm install --ignore-scripts --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY scripts/build.mjs scripts/build.mjs
COPY gen gen
COPY lib lib
COPY services/core services/core
RUN node scripts/build.mjs core && rm dist/core/meta.json

FROM ${NODE_IMAGE} AS core
ENV NODE_ENV=production \
    DEVEX_CORE_HOST=0.0.0.0 \
    DEVEX_CORE_PORT=8080 \
    DEVEX_DATA_DIR=/data \
    DEVEX_TEMPLATES_DIR=/app/templates
# The node image's unprivileged user; files stay owned by root, so the code is read-only to it.
RUN install -d -o 1000 -g 1000 /data
WORKDIR /app
COPY infra/docker/image-package.json ./package.json
COPY templates ./templates
COPY --from=build /app/dist/core ./dist/core
USER 1000:1000
EXPOSE 8080
CMD ["node", "dist/core/main.mjs"]
