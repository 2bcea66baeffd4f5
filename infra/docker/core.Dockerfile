# syntax=docker/dockerfile:1.7
# Devex core (control plane). Build from the repository root:
#   docker build -f infra/docker/core.Dockerfile -t ghcr.io/devex/core:dev .
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

FROM ${NODE_IMAGE} AS core
ENV NODE_ENV=production \
    DEVEX_CORE_HOST=0.0.0.0 \
    DEVEX_CORE_PORT=8080 \
    DEVEX_DATA_DIR=/data \
    DEVEX_TEMPLATES_DIR=/app/templates
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY templates ./templates
# The node image's unprivileged user; files stay owned by root, so the code is read-only to it.
RUN install -d -o 1000 -g 1000 /data
USER 1000:1000
EXPOSE 8080
CMD ["node", "dist/services/core/src/main.js"]
