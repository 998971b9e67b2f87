import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { Redis } from 'ioredis'
import { z } from 'zod'
import { UnavailableError } from './problems.js'
import { problemSchema } from './problem-schema.js'

const statusSchema = z.object({ status: z.literal('ok') })

export const healthRoutes: FastifyPluginAsyncZod<{ redis: Redis }> = async function healthRoutes (app, { redis }) {
  app.get('/healthz', { schema: { response: { 200: statusSchema } } }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', { schema: { response: { 200: statusSchema, 503: problemSchema } } }, async () => {
    try {
      await redis.ping()
    } catch (err) {
      throw new UnavailableError('Redis does not answer.', { cause: err })
    }
    return { status: 'ok' as const }
  })
}
