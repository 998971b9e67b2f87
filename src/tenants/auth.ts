import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { ApiKey } from '../config.js'
import { bearerToken, keyDigest, matchKey } from '../http/bearer.js'
import { UnauthorizedError } from '../http/problems.js'
import { OPEN_TENANT } from './tenant.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant the request acts for: the owner of its API key, or OPEN_TENANT when keys are off. */
    tenant: string
  }
  interface FastifyContextConfig {
    /** false: not a tenant's route; it authenticates its own way or is public (pages for people). */
    tenantAuth?: false
  }
}

// Routes a load balancer or orchestrator calls without credentials; `/metrics` checks operators'
// keys (ADMIN_API_KEYS) itself, since a tenant's key must not open it.
const PUBLIC_ROUTES = new Set(['/healthz', '/readyz', '/metrics'])

/**
 * `Authorization: Bearer <key>` on every route but the health checks, before any other work.
 * Keys are compared as SHA-256 digests with timingSafeEqual, against every configured key, so
 * neither the length nor the position of a match shows in the time taken.
 */
export const auth = fp(async function auth (app: FastifyInstance, opts: { keys: readonly ApiKey[] }) {
  const digests = opts.keys.map((k) => keyDigest(k.key))
  app.decorateRequest('tenant', OPEN_TENANT)
  if (digests.length === 0) {
    app.log.warn('API_KEYS is not set: the API is open to anyone who can reach it, as one tenant')
    return
  }
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0] ?? ''
    if (PUBLIC_ROUTES.has(path) || request.routeOptions.config.tenantAuth === false) return
    const token = bearerToken(request.headers.authorization)
    if (token === null) throw new UnauthorizedError('Send an API key as Authorization: Bearer <key>.')
    const found = matchKey(token, digests)
    if (found === -1) throw new UnauthorizedError('The API key is not valid.')
    request.tenant = (opts.keys[found] as ApiKey).tenant
  })
}, { name: 'auth', dependencies: ['error-handler'] })
