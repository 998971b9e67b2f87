import type { Worker } from 'bullmq'
import type { Logger } from 'pino'
import { createCallbackWorker, type CallbackWorker } from '../callbacks/worker.js'
import type { CallbackOutcome } from '../callbacks/processor.js'
import type { Config } from '../config.js'
import { createContentService } from '../content/service.js'
import type { ContentStore } from '../content/store.js'
import { createDispatcher } from '../fetcher/agent.js'
import { createAddressGuard } from '../fetcher/guard.js'
import { createCallbackRecords } from '../callbacks/record.js'
import type { CallbackData, LaneData } from '../jobs/schemas.js'
import { createJobStore } from '../jobs/redis-store.js'
import { startCancelWatch } from '../lanes/cancel-watch.js'
import type { LaneOutcome } from '../lanes/lane.js'
import { createLaneWorker, type LaneWorker } from '../lanes/worker.js'
import { closeRedis, createRedis } from '../redis/connections.js'

/**
 * The worker role: the fetch worker and its cancel watch, the callback worker, their store
 * connection and one undici dispatcher. close() hands in-flight URLs back and releases
 * everything it opened, in order: workers before the dispatcher and the connections.
 */

export interface WorkerRole {
  /** The role's BullMQ workers, the only `new Worker`s in the code base. */
  workers: { worker: Worker<LaneData, LaneOutcome>, callbacks: Worker<CallbackData, CallbackOutcome> }
  /** Stops the workers, handing in-flight URLs back after `graceMs` (SHUTDOWN_GRACE_MS). */
  close(graceMs?: number): Promise<void>
}

// After the grace period, how long the workers get to hand their lanes back before a forced close.
const FORCE_AFTER_GRACE_MS = 5000

/**
 * `shared.content`: a content store shared with the API role of `trawl all`; closed by its
 * owner. The worker role also runs the content retention sweeper.
 */
export function startWorker (config: Config, logger: Logger, shared: { content?: ContentStore } = {}): WorkerRole {
  const connection = createRedis(config, 'worker', 'worker')
  const storeRedis = createRedis(config, 'worker', 'worker-store')
  const storeOptions = { prefix: config.REDIS_PREFIX, ttlSeconds: config.JOB_TTL_SECONDS }
  const store = createJobStore(storeRedis, storeOptions)
  const callbackRecords = createCallbackRecords(storeRedis, storeOptions)
  // As many connections per origin as fetches in flight: a fetch waiting for a socket spends its deadline.
  const dispatcher = createDispatcher({ guard: createAddressGuard([...config.FETCH_ALLOW_CIDRS]), connections: config.WORKER_CONCURRENCY })
  const content = createContentService({ config, redis: storeRedis, logger: logger.child({ role: 'worker' }), store: shared.content, sweep: true })
  const deps = { config, logger: logger.child({ role: 'worker' }), connection, store, content: content.store, callbackRecords, dispatcher }
  const lanes = createLaneWorker(deps)
  const callbacks = createCallbackWorker(deps)
  const cancelWatch = startCancelWatch({ running: lanes.running, states: store.states, cancel: lanes.cancel, logger: deps.logger })

  let closing: Promise<void> | undefined
  const close = (graceMs = config.SHUTDOWN_GRACE_MS) => (closing ??= (async () => {
    cancelWatch.close()
    // No retention sweep starts from here on; one in progress is waited for at most briefly.
    const contentClosed = content.close()
    await closeWorkers(lanes, callbacks, graceMs, deps.logger)
    // Every lane has ended; destroy() also drops idle keep-alive sockets without waiting.
    await dispatcher.destroy()
    await contentClosed
    await closeRedis(storeRedis)
    await closeRedis(connection)
  })())
  return { workers: { worker: lanes.worker, callbacks: callbacks.worker }, close }
}

/**
 * Closes both workers, lanes handing back after `graceMs`. With Redis unreachable a graceful
 * close never ends (BullMQ cannot move its jobs), so after a further FORCE_AFTER_GRACE_MS they
 * are closed by force; the lanes' locks then lapse and another worker takes them over, as
 * after a crash.
 */
async function closeWorkers (lanes: LaneWorker, callbacks: CallbackWorker, graceMs: number, logger: Logger): Promise<void> {
  const closed = Promise.all([lanes.close(graceMs), callbacks.close()])
  let force: NodeJS.Timeout | undefined
  const forced = new Promise<void>((resolve) => {
    force = setTimeout(() => {
      logger.warn('workers did not close in time; closing them by force')
      lanes.forceClose()
      callbacks.forceClose()
      resolve()
    }, graceMs + FORCE_AFTER_GRACE_MS)
  })
  try {
    await Promise.race([closed, forced])
  } finally {
    clearTimeout(force)
  }
}
