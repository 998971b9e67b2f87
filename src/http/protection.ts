import rateLimit from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'
import type { Redis } from 'ioredis'
import type { Config } from '../config.js'
import { TrawlError } from './problems.js'

// Probes answer even when the process is busy; everything else gets a quick 503 instead.
const EXEMPT = new Set(['/healthz'])

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's helmet options in place of the API's (dashboard/pages.ts: a page's own CSP). */
    helmet?: Readonly<HelmetOptions>
  }
}

/** The API's headers: nothing an answer carries may load or frame anything. */
const API_HEADERS: HelmetOptions = { contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } } }

type HeaderSetter = ReturnType<typeof helmet>

/**
 * Security headers and overload shedding, before anything else (auth's 401 carries the headers
 * too). The headers come from helmet, the overload shedding from @fastify/under-pressure.
 *
 * helmet is called directly rather than through @fastify/helmet, which builds helmet's
 * middleware again on every request (parsing the CSP directives each time): 57 µs of CPU per
 * request in a profile of content reads (docs/bench-results.md). Here each policy is built
 * once: the API's at start, a route's own (`config.helmet`) the first time it is asked for.
 */
export const securityHeaders = fp(async function securityHeaders (app: FastifyInstance, opts: { config: Config }) {
  const { config } = opts
  const forApi = helmet(API_HEADERS)
  const forRoute = new WeakMap<Readonly<HelmetOptions>, HeaderSetter>()
  const setterOf = (own: Readonly<HelmetOptions> | undefined): HeaderSetter => {
    if (own === undefined) return forApi
    let setter = forRoute.get(own)
    if (setter === undefined) {
      setter = helmet(own as HelmetOptions)
      forRoute.set(own, setter)
    }
    return setter
  }
  app.addHook('onRequest', (request, reply, done) => {
    // helmet calls next() with no argument (its errors are thrown when a policy is built).
    setterOf(request.routeOptions.config.helmet)(request.raw, reply.raw, done as (err?: unknown) => void)
  })

  await app.register(underPressure, {
    maxEventLoopDelay: config.OVERLOAD_MAX_EVENT_LOOP_DELAY_MS,
    maxRssBytes: config.OVERLOAD_MAX_RSS_MB * 1024 * 1024,
    pressureHandler: async (request, _reply, type, value) => {
      if (EXEMPT.has(request.url.split('?')[0] ?? '')) return
      request.log.warn({ type, value }, 'overloaded: request shed')
      throw new TrawlError('UNAVAILABLE', 'The server is overloaded; try again shortly.', { retryAfter: 5 })
    }
  })
}, { name: 'security-headers', dependencies: ['error-handler'] })

/** Per-tenant submission limits; after auth, since the tenant is the key. */
export const rateLimits = fp(async function rateLimits (app: FastifyInstance, opts: { config: Config, redis: Redis }) {
  const { config } = opts
  // Counters live in Redis, so every API process shares them.
  await app.register(rateLimit, {
    global: false,
    redis: opts.redis,
    nameSpace: `${config.REDIS_PREFIX}:ratelimit:`,
    keyGenerator: (request) => request.tenant,
    errorResponseBuilder: (_request, context) => new TrawlError('RATE_LIMITED',
      `At most ${context.max} submissions per minute for this tenant; retry in ${context.after}.`,
      { retryAfter: Math.max(1, Math.ceil(context.ttl / 1000)) })
  })
}, { name: 'rate-limits', dependencies: ['error-handler', 'auth'] })
