# syntax=docker/dockerfile:1.7
# Devex MCP server (also the optional per-repl sidecar). Build from the repository root:
#   docker build -f infra/docker/mcp.Dockerfile -t ghcr.io/devex/mcp:dev .
# The image holds the MCP bundle (dist/mcp, from scripts/build.mjs) and the descriptor set its tool
# descriptions are read from, no node_modules.
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
COPY services/mcp services/mcp
RUN node scripts/build.mjs mcp && rm dist/mcp/meta.json

FROM ${NODE_IMAGE} AS mcp
ENV NODE_ENV=production \
    DEVEX_MCP_HOST=0.0.0.0 \
    DEVEX_MCP_PORT=8091
WORKDIR /app
COPY infra/docker/image-package.json ./package.json
COPY descriptors/devex.binpb ./descriptors/devex.binpb
COPY --from=build /app/dist/mcp ./dist/mcp
USER 1000:1000
EXPOSE 8091
CMD ["node", "dist/mcp/main.mjs"]
