# syntax=docker/dockerfile:1.7
# Devex MCP server (also the optional per-repl sidecar). Build from the repository root:
#   docker build -f infra/docker/mcp.Dockerfile -t ghcr.io/devex/mcp:dev .
ARG NODE_IMAGE=node:20.20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm install --no-audit --no-fund
COPY tsconfig.json ./
COPY infra/docker/tsconfig.build.json ./tsconfig.build.json
COPY gen gen
COPY descriptors descriptors
COPY lib lib
COPY services services
RUN npx tsc -p tsconfig.build.json \
 && mkdir -p dist/descriptors && cp descriptors/devex.binpb dist/descriptors/devex.binpb \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS mcp
ENV NODE_ENV=production \
    DEVEX_MCP_HOST=0.0.0.0 \
    DEVEX_MCP_PORT=8091
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER 1000:1000
EXPOSE 8091
CMD ["node", "dist/services/mcp/src/main.js"]
