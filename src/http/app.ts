import { fastifySSE } from '@fastify/sse'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { serializerCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod'
import type { Redis } from 'ioredis'
import type { Config } from '../config.js'
import { purgeJob } from '../content/purge.js'
import type { Retention } from '../content/retention.js'
import { contentRoutes } from '../content/routes.js'
import type { ContentStore } from '../content/store.js'
import type { EventHub } from '../events/hub.js'
import type { FinishWatcher } from '../events/finish-watcher.js'
import type { Queues } from '../jobs/queue.js'
import type { JobStore } from '../jobs/store.js'
import type { Metrics } from '../metrics/metrics.js'
import { redisMemory } from '../redis/memory.js'
import { createAdmission } from '../tenants/admission.js'
import { auth } from '../tenants/auth.js'
import { createIdempotencyKeys } from '../tenants/idempotency.js'
import { clientErrorHandler, errorHandler, frameworkErrorHandler } from './error-handler.js'
import { rateLimits, securityHeaders } from './protection.js'
import { validatorCompiler } from './validation.js'
import { healthRoutes } from './health.js'
import { metricsRoute } from './service-server.js'
import { jobEventRoutes } from '../events/routes.js'
import { jobRoutes } from '../jobs/routes.js'
import { adminRoutes, type AdminOptions } from '../admin/index.js'
import { dashboardRoutes } from '../dashboard/index.js'
import { docsRoutes } from '../docs/index.js'

export interface AppDeps {
  config: Config
  logger: FastifyBaseLogger
  redis: Redis
  store: JobStore
  queues: Queues
  watcher: FinishWatcher
  hub: EventHub
  /** Where the bodies are, and when they go (content/service.ts). */
  content: { store: ContentStore, retention: Retention }
  /** Operators' pages: ADMIN_API_KEYS and the queues Bull Board shows. Absent: /admin is off. */
  admin?: AdminOptions
  /** The role's metrics: `/metrics` serves them (behind ADMIN_API_KEYS when set). @defaultValue none (no /metrics) */
  metrics?: Metrics
}

/** The API as a Fastify instance; it owns none of its dependencies and closes none of them. */
export async function buildApp (deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps
  const app = Fastify({
    loggerInstance: deps.logger,
    // Room for MAX_URLS_PER_JOB URLs of the longest allowed length, and not much more.
    bodyLimit: Math.max(1_048_576, config.MAX_URLS_PER_JOB * 2100 + 65_536),
    // Receiving a request (headers and body) may take this long: a slow client cannot hold a
    // socket with a request it never finishes.
    requestTimeout: 30_000,
    // No inactivity timeout on the socket: `wait` holds an answer for up to 60 s and an event
    // stream can be quiet for 15 s between heartbeats; both are answers in progress, not idling.
    connectionTimeout: 0,
    keepAliveTimeout: 5_000,
    // Requests that arrive while closing are still answered (as problems, like any other).
    return503OnClosing: false,
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler,
    genReqId: () => crypto.randomUUID(),
    routerOptions: { ignoreTrailingSlash: true }
  }).withTypeProvider<ZodTypeProvider>()
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  await app.register(errorHandler)
  // Waiting requests answer at once when the server closes, rather than holding a deploy.
  app.addHook('preClose', async () => { await deps.watcher.close() })
  await app.register(securityHeaders, { config })
  await app.register(auth, { keys: config.API_KEYS })
  await app.register(rateLimits, { config, redis: deps.redis })
  await app.register(healthRoutes, { redis: deps.redis })
  if (deps.metrics) await app.register(metricsRoute, { registry: deps.metrics.registry, adminKeys: config.ADMIN_API_KEYS })
  await app.register(fastifySSE, { heartbeatInterval: config.SSE_HEARTBEAT_MS })
  await registerJobs(app, deps)
  // Pages for people (/, /docs, /admin): their own CSP, and no tenant auth on the pages
  // themselves; the data comes from the API with the person's key.
  await app.register(dashboardRoutes)
  await app.register(docsRoutes)
  await app.register(adminRoutes, deps.admin ?? { keys: [], queues: [] })
  return app
}

/** The job, content and event routes, with what they share: admission, keys, the content store. */
async function registerJobs (app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { config } = deps
  // Admission and Idempotency-Keys are stateless views of the API's Redis connection.
  const admission = createAdmission(deps.redis, { prefix: config.REDIS_PREFIX })
  const idempotency = createIdempotencyKeys(deps.redis, { prefix: config.REDIS_PREFIX, ttlSeconds: config.JOB_TTL_SECONDS })
  const { store: bodies, retention } = deps.content
  const ttlMs = config.JOB_TTL_SECONDS * 1000
  await app.register(jobRoutes, {
    config,
    store: deps.store,
    admission,
    idempotency,
    memory: redisMemory(deps.redis),
    queues: deps.queues,
    watcher: deps.watcher,
    purge: (id, tenant) => purgeJob({ store: deps.store, content: bodies, retention }, id, tenant),
    retain: async (job) => { if (job.options.keepContent) await retention.schedule(job.id, job.now + ttlMs) }
  })
  await app.register(contentRoutes, { store: deps.store, content: bodies })
  await app.register(jobEventRoutes, { store: deps.store, hub: deps.hub, retryMs: config.SSE_RETRY_MS, metrics: deps.metrics })
}
