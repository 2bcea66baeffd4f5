# syntax=docker/dockerfile:1.7
# Devex egress proxy (services/egress): how repl pods reach names under their egress policy.
# Build from the repository root:
#   docker build -f infra/docker/egress.Dockerfile -t ghcr.io/devex/egress:dev .
# The image holds the proxy's bundle (dist/egress, from scripts/build.mjs), no node_modules.
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
COPY services/egress services/egress
RUN node scripts/build.mjs egress && rm dist/egress/meta.json

FROM ${NODE_IMAGE} AS egress
ENV NODE_ENV=production \
    DEVEX_EGRESS_HOST=0.0.0.0 \
    DEVEX_EGRESS_PORT=3128
WORKDIR /app
COPY infra/docker/image-package.json ./package.json
COPY --from=build /app/dist/egress ./dist/egress
USER 1000:1000
EXPOSE 3128
CMD ["node", "dist/egress/main.mjs"]
