import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { Config } from '../config.js'
import { TrawlError } from './problems.js'

// Probes answer even when the process is busy; everything else gets a quick 503 instead.
const EXEMPT = new Set(['/healthz'])

/**
 * Security headers and overload shedding, before anything else (auth's 401 carries the headers
 * too). Each is a well-kept Fastify plugin.
 */
export const securityHeaders = fp(async function securityHeaders (app: FastifyInstance, opts: { config: Config }) {
  const { config } = opts
  await app.register(helmet, { global: true, contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } } })

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
