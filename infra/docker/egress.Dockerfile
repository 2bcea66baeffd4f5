# syntax=docker/dockerfile:1.7
# Devex egress proxy (services/egress): how repl pods reach names under their egress policy.
# Build from the repository root:
#   docker build -f infra/docker/egress.Dockerfile -t ghcr.io/devex/egress:dev .
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
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS egress
ENV NODE_ENV=production \
    DEVEX_EGRESS_HOST=0.0.0.0 \
    DEVEX_EGRESS_PORT=3128
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER 1000:1000
EXPOSE 3128
CMD ["node", "dist/services/egress/src/main.js"]
