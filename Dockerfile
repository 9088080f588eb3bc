# syntax=docker/dockerfile:1
#
# apikeys: production image. Build:  docker build -t apikeys .
#                              Run:  docker run -p 50051:50051 -e MONGODB_URI=mongodb://db:27017/apikeys apikeys
#
# Node 24 is the current LTS. Three stages: `build` compiles (needs dev dependencies: buf,
# ts-proto, typescript), `deps` installs production dependencies only, and the runtime image
# gets just those two results — no compiler, no buf, no test tooling, no npm cache.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---------- build: buf generate + tsc → dist/ ----------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm 11 runs no install scripts by default; none are needed: buf's binary arrives through its
# platform package (@bufbuild/buf-linux-x64 / -aarch64), which the lockfile lists.
RUN npm ci --no-audit --no-fund
COPY buf.yaml buf.gen.yaml tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY src ./src
# `build` = buf generate (local plugin node_modules/.bin/protoc-gen-ts_proto, no network) + buf build
# (descriptor set for server reflection) + tsc, and copies src/gen/descriptor.binpb into dist/gen/.
# Development-only code (src/dev.ts, src/dev/, src/devdb/) is neither in the context
# (.dockerignore) nor compiled (tsconfig.build.json); the last three tests check dist/ for it.
RUN npm run build && test -f dist/gen/descriptor.binpb && test -f dist/main.js && test -f dist/healthcheck.js \
  && test -f dist/cli/keyctl.js && test ! -e dist/dev.js && test ! -e dist/dev && test ! -e dist/devdb

# ---------- deps: production dependencies only ----------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---------- runtime ----------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    GRPC_ADDR=0.0.0.0:50051
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The image's built-in unprivileged user (uid 1000); the files above stay root-owned and read-only to it.
USER node
# gRPC, and the Prometheus endpoint (METRICS_ADDR; "off" disables it).
EXPOSE 50051 9464
# gRPC health checking (grpc.health.v1.Health/Check, service ""): exit 0 only when SERVING.
# A small Node client (src/healthcheck.ts) rather than grpc_health_probe: it needs nothing beyond
# the production dependencies and follows GRPC_ADDR's port. Kubernetes can use the same command
# as an exec probe, or its native `grpc:` probe on port 50051.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "dist/healthcheck.js"]
# node is PID 1 and handles SIGTERM itself (src/main.ts: health → NOT_SERVING, drain, close storage).
CMD ["node", "dist/main.js"]
