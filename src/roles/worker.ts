import type { Worker } from 'bullmq'
import type { Redis } from 'ioredis'
import type { Dispatcher } from 'undici'
import type { Logger } from 'pino'
import { createCallbackWorker, type CallbackWorker } from '../callbacks/worker.js'
import type { CallbackOutcome } from '../callbacks/processor.js'
import type { Config } from '../config.js'
import { createContentService } from '../content/service.js'
import type { ContentStore } from '../content/store.js'
import { createDispatcher, DEFAULT_USER_AGENT } from '../fetcher/agent.js'
import { createAddressGuard } from '../fetcher/guard.js'
import { createCallbackRecords } from '../callbacks/record.js'
import type { CallbackData, LaneData } from '../jobs/schemas.js'
import { createHostGate, type HostGate } from '../hosts/gate.js'
import { createPoliteness, type Politeness } from '../hosts/politeness.js'
import { createRobots } from '../hosts/robots.js'
import { createHostSlots } from '../hosts/slots.js'
import { createJobStore } from '../jobs/redis-store.js'
import { startCancelWatch } from '../lanes/cancel-watch.js'
import type { LaneOutcome } from '../lanes/lane.js'
import { createLaneWorker, type LaneWorker } from '../lanes/worker.js'
import { startServiceServer, type ServiceServer } from '../http/service-server.js'
import { createMetrics, type Metrics } from '../metrics/metrics.js'
import { meteredStore } from '../metrics/store.js'
import { closeRedis, createRedis } from '../redis/connections.js'

/**
 * The worker role: the fetch worker and its cancel watch, the callback worker, their store
 * connection and one undici dispatcher. close() hands in-flight URLs back and releases
 * everything it opened, in order: workers before the dispatcher and the connections.
 */

export interface WorkerOptions {
  /**
   * The metrics to count into; `trawl all` hands the same one (role `all`) to both roles.
   * @defaultValue a Metrics of its own, role `worker`
   */
  metrics?: Metrics
  /**
   * A content store shared with the API role of `trawl all`; closed by its owner. The worker
   * role also runs the content retention sweeper. @defaultValue one of its own, from the config
   */
  content?: ContentStore | undefined
}

export interface WorkerRole {
  /** The role's BullMQ workers, the only `new Worker`s in the code base. */
  workers: { worker: Worker<LaneData, LaneOutcome>, callbacks: Worker<CallbackData, CallbackOutcome> }
  /** What the role counts; {@link startWorkerEndpoints} serves it on METRICS_PORT. */
  metrics: Metrics
  /** Stops the workers, handing in-flight URLs back after `graceMs` (SHUTDOWN_GRACE_MS). */
  close(graceMs?: number): Promise<void>
}

// After the grace period, how long the workers get to hand their lanes back before a forced close.
const FORCE_AFTER_GRACE_MS = 5000

export function startWorker (config: Config, logger: Logger, opts: WorkerOptions = {}): WorkerRole {
  const metrics = opts.metrics ?? createMetrics({ role: 'worker' })
  const connection = createRedis(config, 'worker', 'worker')
  const storeRedis = createRedis(config, 'worker', 'worker-store')
  const storeOptions = { prefix: config.REDIS_PREFIX, ttlSeconds: config.JOB_TTL_SECONDS }
  const store = meteredStore(createJobStore(storeRedis, storeOptions), metrics)
  const callbackRecords = createCallbackRecords(storeRedis, storeOptions)
  // As many connections per origin as fetches in flight: a fetch waiting for a socket spends its deadline.
  const dispatcher = createDispatcher({ guard: createAddressGuard([...config.FETCH_ALLOW_CIDRS]), connections: config.WORKER_CONCURRENCY })
  const hostsRedis = createRedis(config, 'subscriber', 'worker-hosts')
  const politeness = startPoliteness(config, storeRedis, hostsRedis, dispatcher, metrics)
  metrics.observePausedHosts(async () => politeness.gate()?.pausedHosts() ?? 0)
  const content = createContentService({ config, redis: storeRedis, logger: logger.child({ role: 'worker' }), store: opts.content, sweep: true, metrics })
  // `metrics` is here for every part of the role: host pauses and content-store operations count into it too.
  const deps = { config, logger: logger.child({ role: 'worker' }), connection, store, content: content.store, callbackRecords, dispatcher, metrics, hosts: politeness.hosts }
  const lanes = createLaneWorker(deps)
  const callbacks = createCallbackWorker(deps)
  const cancelWatch = startCancelWatch({ running: lanes.running, states: store.states, cancel: lanes.cancel, logger: deps.logger })

  let closing: Promise<void> | undefined
  const close = (graceMs = config.SHUTDOWN_GRACE_MS) => (closing ??= (async () => {
    cancelWatch.close()
    // No retention sweep starts from here on; one in progress is waited for at most briefly.
    const sweepStopped = content.stopSweeping()
    await closeWorkers(lanes, callbacks, graceMs, deps.logger)
    // Every lane has ended; destroy() also drops idle keep-alive sockets without waiting.
    await politeness.gate()?.close()
    await closeRedis(hostsRedis)
    await dispatcher.destroy()
    await sweepStopped
    // Only now: lanes finishing their fetches in the grace period still write their bodies.
    await content.close()
    await closeRedis(storeRedis)
    await closeRedis(connection)
  })())
  return { workers: { worker: lanes.worker, callbacks: callbacks.worker }, metrics, close }
}

/**
 * A `trawl worker`'s service endpoints (`/healthz`, `/readyz`, `/metrics`) on METRICS_PORT, bound
 * to HOST, so that health checks and Prometheus reach a process that has no API. Readiness asks
 * Redis on a fail-fast connection of its own, so a probe never waits in the worker's queue of
 * commands. `/metrics` is open here: the port is meant for the cluster, not for tenants.
 * `trawl all` does not call this: its API serves the endpoints, with the shared metrics.
 */
export async function startWorkerEndpoints (config: Config, role: Pick<WorkerRole, 'metrics'>, logger: Logger): Promise<ServiceServer> {
  const probe = createRedis(config, 'producer', 'worker-probe')
  try {
    const server = await startServiceServer({
      host: config.HOST,
      port: config.METRICS_PORT,
      registry: role.metrics.registry,
      ready: async () => (await probe.ping()) === 'PONG',
      logger: logger.child({ role: 'worker-endpoints' })
    })
    return { ...server, close: async () => { await server.close(); await closeRedis(probe) } }
  } catch (err) {
    await closeRedis(probe)
    throw err
  }
}

/**
 * The host rules of this process: slots and robots.txt on the store's connection, the gate
 * on a subscriber connection of its own; the lanes may start before the gate has subscribed.
 */
function startPoliteness (config: Config, redis: Redis, subscriber: Redis, dispatcher: Dispatcher, metrics: Pick<Metrics, 'hostPaused'>): { hosts: Politeness, gate: () => HostGate | null } {
  const prefix = config.REDIS_PREFIX
  let gate: HostGate | null = null
  const creating = createHostGate({ slots: createHostSlots(redis, { prefix }), subscriber, prefix, leaseMs: config.WORKER_LOCK_MS })
  creating.then((g) => { gate = g }, () => {})
  const robots = createRobots({ redis, prefix, dispatcher, userAgent: DEFAULT_USER_AGENT })
  const hosts = createPoliteness({ gate: creating, robots, hostConcurrency: config.HOST_CONCURRENCY, hostDelayMs: config.HOST_DELAY_MS, onPause: (status) => metrics.hostPaused(status) })
  return { hosts, gate: () => gate }
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
