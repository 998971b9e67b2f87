import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { Redis } from 'ioredis'
import { z } from 'zod'
import { NEAR_FULL_RETRY_AFTER_S, nearFullDetail, redisMemory, type MemoryState } from '../redis/memory.js'
import { TrawlError, UnavailableError, problemSchema } from './problems.js'

const statusSchema = z.object({ status: z.literal('ok') })

/**
 * `/healthz` (the process runs) and `/readyz`: 503 while Redis does not answer, and while it is
 * near its maxmemory (the API would refuse jobs then, so a balancer should send them elsewhere).
 */
export const healthRoutes: FastifyPluginAsyncZod<{ redis: Redis }> = async function healthRoutes (app, { redis }) {
  const memory = redisMemory(redis)
  app.get('/healthz', { schema: { response: { 200: statusSchema } } }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', { schema: { response: { 200: statusSchema, 503: problemSchema } } }, async () => {
    let state: MemoryState
    try {
      await redis.ping()
      state = await memory.state()
    } catch (err) {
      throw new UnavailableError('Redis does not answer.', { cause: err })
    }
    if (state.nearFull) throw new TrawlError('UNAVAILABLE', nearFullDetail(state), { retryAfter: NEAR_FULL_RETRY_AFTER_S })
    return { status: 'ok' as const }
  })
}
