import type { Logger } from 'pino'
import type { Config } from '../config.js'
import { createDispatcher } from '../fetcher/agent.js'
import { createAddressGuard } from '../fetcher/guard.js'
import { createCallbackRecords } from '../callbacks/record.js'
import { createJobStore } from '../jobs/redis-store.js'
import { createWorkers, type Workers } from '../lanes/workers.js'
import { closeRedis, createRedis } from '../redis/connections.js'

/**
 * The worker role: the BullMQ workers, their store connection and one undici dispatcher.
 * close() hands in-flight URLs back and releases everything it opened, in order.
 */

export interface WorkerRole {
  workers: Workers
  /** Stops the workers, handing in-flight URLs back after `graceMs` (SHUTDOWN_GRACE_MS). */
  close(graceMs?: number): Promise<void>
}

export function startWorker (config: Config, logger: Logger): WorkerRole {
  const connection = createRedis(config, 'worker', 'worker')
  const storeRedis = createRedis(config, 'worker', 'worker-store')
  const storeOptions = { prefix: config.REDIS_PREFIX, ttlSeconds: config.JOB_TTL_SECONDS }
  const store = createJobStore(storeRedis, storeOptions)
  const callbackRecords = createCallbackRecords(storeRedis, storeOptions)
  // As many connections per origin as fetches in flight: a fetch waiting for a socket spends its deadline.
  const dispatcher = createDispatcher({ guard: createAddressGuard([...config.FETCH_ALLOW_CIDRS]), connections: config.WORKER_CONCURRENCY })
  const workers = createWorkers({ config, logger: logger.child({ role: 'worker' }), connection, store, callbackRecords, dispatcher })
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
