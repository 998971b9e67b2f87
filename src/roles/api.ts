import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import { createContentService } from '../content/service.js'
import type { ContentStore } from '../content/store.js'
import { createEventHub, type EventHub } from '../events/hub.js'
import { createFinishWatcher } from '../events/finish-watcher.js'
import { buildApp } from '../http/app.js'
import { createQueues } from '../jobs/queue.js'
import { createJobStore } from '../jobs/redis-store.js'
import { closeRedis, createRedis, untilReady } from '../redis/connections.js'

/**
 * The API role: Fastify, a fail-fast producer connection, the queues, the finish watcher and the
 * event hub. close() releases everything it opened, in order.
 */

export interface ApiRole {
  app: FastifyInstance
  hub: EventHub
  close(): Promise<void>
}

/** `shared.content`: a content store shared with the worker role of `trawl all`; closed by its owner. */
export async function startApi (config: Config, logger: Logger, shared: { content?: ContentStore } = {}): Promise<ApiRole> {
  const redis = createRedis(config, 'producer', 'api')
  const subscriber = createRedis(config, 'subscriber', 'api-sub')
  const reader = createRedis(config, 'subscriber', 'api-events')
  const queues = createQueues(redis, config.REDIS_PREFIX)
  queues.fetch.on('error', (err) => logger.warn({ err }, 'queue error'))
  queues.flow.on('error', (err) => logger.warn({ err }, 'flow producer error'))
  const store = createJobStore(redis, { prefix: config.REDIS_PREFIX, ttlSeconds: config.JOB_TTL_SECONDS })
  if (!await untilReady(redis)) logger.warn('Redis does not answer yet; requests get 503 until it does')
  const watcher = await createFinishWatcher(subscriber, store.channel)
  const hub = createEventHub(reader, redis, logger)
  const content = createContentService({ config, redis, logger, store: shared.content })
  const app = await buildApp({ config, logger, redis, store, queues, watcher, hub, content })
  let closing: Promise<void> | undefined
  const close = () => (closing ??= (async () => {
    await app.close()
    await content.close()
    await hub.close()
    await watcher.close()
    await queues.close()
    await closeRedis(subscriber)
    await closeRedis(reader)
    await closeRedis(redis)
  })())
  return { app, hub, close }
}
