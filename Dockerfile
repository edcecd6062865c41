# syntax=docker/dockerfile:1
# quilt-mcp for containers: JWT mode over stateless Streamable HTTP. Built from a fresh clone
# (the build stage bundles the server with its dependencies into one folder). This project's CI
# builds it with podman (scripts/image.sh) and runs it as deployed (npm run test:stateless). See
# deploy/README.md for ECS and a local trial.
# Runs with a read-only root filesystem: give it a writable tmpfs (or volume) at /tmp.

# Node 22+: the version the project targets.
FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY scripts/bundle.ts ./scripts/
# tsc type-checks the sources (its dist/ is not shipped); the bundle is what the image runs.
RUN npm run build && npm run build:bundle

FROM node:22-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# The bundled server has no dependencies: no npm install, no node_modules, no package.json.
COPY --from=build /app/bundle/server ./bundle/server
COPY README.md LICENSE ./
# The files stay root-owned and read-only to the server, which runs as the image's non-root user.
USER node
# HOME=/tmp: the only writable place (tmpfs); nothing is read from it. MCP_REQUIRE_JWT=true: every
# request acts as the user of its token, and the server's own identity only calls sts:AssumeRole.
ENV HOME=/tmp MCP_REQUIRE_JWT=true MCP_TRANSPORT=http PORT=3000
EXPOSE 3000
# No curl in slim images: node's fetch answers the health check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "bundle/server/index.mjs"]
