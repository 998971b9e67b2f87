import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import { serializerCompiler, type FastifyPluginAsyncZod, type ZodTypeProvider } from 'fastify-type-provider-zod'
import type { Registry } from 'prom-client'
import { z } from 'zod'
import { clientErrorHandler, errorHandler, frameworkErrorHandler, sendProblem } from './error-handler.js'
import { problemSchema } from './problems.js'
import { bearerToken, keyDigest, matchKey } from './bearer.js'
import { validatorCompiler } from './validation.js'

/**
 * The service endpoints every role answers (contract, Service endpoints): `/healthz`, `/readyz`
 * and `/metrics`. The API registers {@link metricsRoute} in its own app; a `trawl worker`, which
 * has no API, runs {@link startServiceServer} on METRICS_PORT so that health checks and
 * Prometheus reach it too.
 */

/** Answers whether the process can do its work (Redis answers, Redis is not near full). */
export type ReadyCheck = () => Promise<boolean>

export interface MetricsRouteOptions {
  /** The registry to render. */
  registry: Registry
  /**
   * Operators' bearer keys (ADMIN_API_KEYS); when any is given, `/metrics` answers 401 without
   * one of them. Compared as SHA-256 digests with timingSafeEqual. @defaultValue [] (open)
   */
  adminKeys?: readonly string[]
}

/** `GET /metrics` in Prometheus text format, optionally behind operators' bearer keys. */
export const metricsRoute: FastifyPluginAsyncZod<MetricsRouteOptions> = async function metricsRoute (app, opts) {
  const digests = (opts.adminKeys ?? []).map(keyDigest)
  app.get('/metrics', { schema: { response: { 200: z.string(), 401: problemSchema } } }, async (request, reply) => {
    const token = bearerToken(request.headers.authorization)
    if (digests.length > 0 && (token === null || matchKey(token, digests) === -1)) {
      return sendProblem(reply, 'UNAUTHORIZED', 'Send an operator key (ADMIN_API_KEYS) as Authorization: Bearer <key>.')
    }
    const text = await opts.registry.metrics()
    return reply.type(opts.registry.contentType).send(text)
  })
}

const statusSchema = z.object({ status: z.literal('ok') })

export interface HealthRouteOptions {
  ready: ReadyCheck
  /** Milliseconds `/readyz` waits for `ready()` before answering 503. @defaultValue 2000 */
  readyTimeoutMs?: number
}

async function isReady (check: ReadyCheck, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms) })
  try {
    return await Promise.race([check().catch(() => false), late])
  } finally {
    clearTimeout(timer)
  }
}

/** `GET /healthz` (200 while the process runs) and `GET /readyz` (200 when `ready()` says so). */
export const serviceHealthRoutes: FastifyPluginAsyncZod<HealthRouteOptions> = async function serviceHealthRoutes (app, opts) {
  const ms = opts.readyTimeoutMs ?? 2000
  app.get('/healthz', { schema: { response: { 200: statusSchema } } }, async () => ({ status: 'ok' as const }))
  app.get('/readyz', { schema: { response: { 200: statusSchema, 503: problemSchema } } }, async (_request, reply) => {
    if (await isReady(opts.ready, ms)) return { status: 'ok' as const }
    return sendProblem(reply, 'UNAVAILABLE', 'This process cannot do its work: Redis does not answer, or is near full.')
  })
}

export interface ServiceServerOptions extends MetricsRouteOptions, HealthRouteOptions {
  /** Bind address. @defaultValue 127.0.0.1 */
  host?: string
  /** Port (METRICS_PORT); 0 picks a free one. @defaultValue 9464 */
  port?: number
  /** Request logs go here. @defaultValue none */
  logger?: FastifyBaseLogger
}

export interface ServiceServer {
  readonly app: FastifyInstance
  /** The port actually bound. */
  readonly port: number
  /** `http://host:port`, for tests and log lines. */
  readonly url: string
  /** Stops listening; safe to call more than once. */
  close (): Promise<void>
}

/** Starts the service endpoints on their own port (a worker's METRICS_PORT). */
export async function startServiceServer (opts: ServiceServerOptions): Promise<ServiceServer> {
  const app = Fastify({
    ...(opts.logger === undefined ? { logger: false } : { loggerInstance: opts.logger }),
    // Scrapes and probes are small and quick; nothing here waits long.
    requestTimeout: 10_000,
    keepAliveTimeout: 5_000,
    frameworkErrors: frameworkErrorHandler,
    clientErrorHandler
  }).withTypeProvider<ZodTypeProvider>()
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  await app.register(errorHandler)
  await app.register(serviceHealthRoutes, opts)
  await app.register(metricsRoute, opts)
  const host = opts.host ?? '127.0.0.1'
  await app.listen({ host, port: opts.port ?? 9464 })
  const { port } = app.server.address() as AddressInfo
  let closing: Promise<void> | undefined
  return {
    app,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: () => (closing ??= app.close())
  }
}
