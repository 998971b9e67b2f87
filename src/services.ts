import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { buildApp } from './app.js'
import type { Config } from './config.js'
import { createDispatcher } from './fetcher/agent.js'
import { createAddressGuard } from './fetcher/guard.js'
import { createEventHub, type EventHub } from './events/hub.js'
import { createFinishWatcher } from './jobs/finish-watcher.js'
import { createQueues } from './jobs/queue.js'
import { createJobStore } from './jobs/store.js'
import { closeRedis, createRedis, untilReady } from './redis.js'
import { createWorkers, type Workers } from './workers/create-workers.js'

/**
 * Wires each role from config: the API (Fastify, a fail-fast producer connection, the queue and
 * the finish watcher) and the worker (BullMQ workers, their store connection and one undici
 * dispatcher). Each returns a close() that releases everything it opened, in order.
 */

export interface ApiRole {
  app: FastifyInstance
  hub: EventHub
  close(): Promise<void>
}

export async function startApi (config: Config, logger: Logger): Promise<ApiRole> {
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
  const app = await buildApp({ config, logger, redis, store, queues, watcher, hub })
  let closing: Promise<void> | undefined
  const close = () => (closing ??= (async () => {
    await app.close()
    await hub.close()
    await watcher.close()
    await queues.close()
    await closeRedis(subscriber)
    await closeRedis(reader)
    await closeRedis(redis)
  })())
  return { app, hub, close }
}

export interface WorkerRole {
  workers: Workers
  /** Stops the workers, handing in-flight URLs back after `graceMs` (SHUTDOWN_GRACE_MS). */
  close(graceMs?: number): Promise<void>
}

export function startWorker (config: Config, logger: Logger): WorkerRole {
  const connection = createRedis(config, 'worker', 'worker')
  const storeRedis = createRedis(config, 'worker', 'worker-store')
  const store = createJobStore(storeRedis, { prefix: config.REDIS_PREFIX, ttlSeconds: config.JOB_TTL_SECONDS })
  // As many connections per origin as fetches in flight: a fetch waiting for a socket spends its deadline.
  const dispatcher = createDispatcher({ guard: createAddressGuard([...config.FETCH_ALLOW_CIDRS]), connections: config.WORKER_CONCURRENCY })
  const workers = createWorkers({ config, logger: logger.child({ role: 'worker' }), connection, store, dispatcher })
  let closing: Promise<void> | undefined
  const close = (graceMs?: number) => (closing ??= (async () => {
    await workers.close(graceMs)
    // Every lane has ended; destroy() also drops idle keep-alive sockets without waiting.
    await dispatcher.destroy()
    await closeRedis(storeRedis)
    await closeRedis(connection)
  })())
  return { workers, close }
}
