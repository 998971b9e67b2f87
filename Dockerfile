# syntax=docker/dockerfile:1
# One image for every role: `trawl api`, `trawl worker` or `trawl all` (the CMD).

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY scripts/copy-assets.mjs ./scripts/
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    METRICS_PORT=9464
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
# The dashboard's static files and the spec /docs renders are read at run time, not compiled.
COPY --from=build --chown=node:node /app/src/dashboard/public ./src/dashboard/public
COPY --chown=node:node openapi.yaml ./
# The fs content store's default folder (CONTENT_DIR); mount a volume here to keep bodies.
RUN mkdir -p /app/data/content && chown -R node:node /app/data
# The health check of every role: the API (and `all`) answers /healthz on PORT, a worker on
# METRICS_PORT. The role is in PID 1's arguments (tini -- node dist/main.js <role>); when they
# cannot be read (another init), both ports are tried.
COPY --chown=node:node <<'EOF' /app/healthcheck.mjs
import { readFileSync } from 'node:fs'
const env = process.env
let args = []
try { args = readFileSync('/proc/1/cmdline', 'utf8').split('\0') } catch {}
const role = args.slice(1).find((a) => a === 'api' || a === 'worker' || a === 'all')
const api = env.PORT || '3000'
const worker = env.METRICS_PORT || '9464'
const ports = role === 'worker' ? [worker] : role ? [api] : [api, worker]
for (const port of ports) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2500) })
    if (res.ok) process.exit(0)
  } catch {}
}
process.exit(1)
EOF
USER node
EXPOSE 3000 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "/app/healthcheck.mjs"]
# Node as PID 1 does not reap or forward signals well; tini does both, so SIGTERM drains cleanly.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "dist/main.js"]
CMD ["all"]
