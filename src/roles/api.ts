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
import { CALLBACK_QUEUE, FETCH_QUEUE } from '../jobs/keys.js'
import { createMetrics, type Metrics } from '../metrics/metrics.js'
import { meteredStore } from '../metrics/store.js'
import { closeRedis, createRedis, untilReady } from '../redis/connections.js'
import { redisMemory } from '../redis/memory.js'

/**
 * The API role: Fastify, a fail-fast producer connection, the queues (on a producer connection
 * of their own), the finish watcher and the event hub. close() releases everything it opened,
 * in order.
 */

export interface ApiOptions {
  /**
   * The metrics to count into and serve on `/metrics`; `trawl all` hands the same one (role
   * `all`) to both roles. @defaultValue a Metrics of its own, role `api`
   */
  metrics?: Metrics
  /**
   * A content store shared with the worker role of `trawl all`; closed by its owner.
   * @defaultValue one of its own, from the config
   */
  content?: ContentStore | undefined
}

export interface ApiRole {
  app: FastifyInstance
  hub: EventHub
  metrics: Metrics
  close(): Promise<void>
}

export async function startApi (config: Config, logger: Logger, opts: ApiOptions = {}): Promise<ApiRole> {
  const metrics = opts.metrics ?? createMetrics({ role: 'api' })
  const redis = createRedis(config, 'producer', 'api')
  const subscriber = createRedis(config, 'subscriber', 'api-sub')
  const reader = createRedis(config, 'subscriber', 'api-events')
  // BullMQ's queues define ~60 scripts on their connection, and ioredis copies every script of a
  // connection into each pipeline and transaction made on it: ~40 µs per multi() where the
  // store's own 9 scripts cost ~5 (docs/bench-results.md). Every content read and job read is
  // a multi(), so the store keeps a connection without BullMQ's.
  const queueRedis = createRedis(config, 'producer', 'api-queues')
  const queues = createQueues(queueRedis, config.REDIS_PREFIX)
  queues.fetch.on('error', (err) => logger.warn({ err }, 'queue error'))
  queues.callback.on('error', (err) => logger.warn({ err }, 'queue error'))
  queues.flow.on('error', (err) => logger.warn({ err }, 'flow producer error'))
  const store = meteredStore(createJobStore(redis, { prefix: config.REDIS_PREFIX, ttlSeconds: config.JOB_TTL_SECONDS }), metrics)
  // Queue depth is read here, on the fail-fast producer connection: one role reports it, so a
  // worker's scrape never waits on Redis. Every API replica reports the same numbers (use max()).
  metrics.observeQueue(FETCH_QUEUE, () => queues.fetch.getJobCounts())
  metrics.observeQueue(CALLBACK_QUEUE, () => queues.callback.getJobCounts())
  // The same cached reading as the near-full rule's (redis/memory.ts): one INFO a second at most.
  metrics.observeRedisMemory(() => redisMemory(redis).state())
  const ready = await Promise.all([untilReady(redis), untilReady(queueRedis)])
  if (!ready.every(Boolean)) logger.warn('Redis does not answer yet; requests get 503 until it does')
  const watcher = await createFinishWatcher(subscriber, store.channel)
  const hub = createEventHub(reader, redis, logger)
  const admin = { keys: config.ADMIN_API_KEYS, queues: [queues.fetch, queues.callback] }
  const content = createContentService({ config, redis, logger, store: opts.content, metrics })
  const app = await buildApp({ config, logger, redis, store, queues, watcher, hub, admin, metrics, content })
  let closing: Promise<void> | undefined
  const close = () => (closing ??= (async () => {
    await app.close()
    await content.close()
    await hub.close()
    await watcher.close()
    await queues.close()
    await closeRedis(subscriber)
    await closeRedis(reader)
    await closeRedis(queueRedis)
    await closeRedis(redis)
  })())
  return { app, hub, metrics, close }
}
