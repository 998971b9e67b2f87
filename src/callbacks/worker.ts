import { Worker, type ConnectionOptions, type Job } from 'bullmq'
import type { Dispatcher } from 'undici'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import { CALLBACK_QUEUE } from '../jobs/keys.js'
import { callbackDataSchema, type CallbackData } from '../jobs/schemas.js'
import { readJob } from '../jobs/documents.js'
import type { JobStore } from '../jobs/store.js'
import { callbackOutcome, type Metrics } from '../metrics/metrics.js'
import type { CallbackRecords } from './record.js'
import { deliverCallback } from './deliver.js'
import { runCallback, type CallbackDeps, type CallbackOutcome } from './processor.js'

export interface CallbackWorkerDeps {
  config: Config
  logger: Logger
  /** A connection for BullMQ (role `worker`); BullMQ duplicates it for its blocking reads. */
  connection: ConnectionOptions
  store: JobStore
  callbackRecords: CallbackRecords
  dispatcher: Dispatcher
  /** Delivery attempts by outcome, callbacks by final state. @defaultValue none */
  metrics?: Pick<Metrics, 'callbackAttempt' | 'callbackFinished'>
}

export interface CallbackWorker {
  worker: Worker<CallbackData, CallbackOutcome>
  /** Lets deliveries in flight end, then stops; safe to call twice. */
  close(): Promise<void>
  /** Closes without waiting for deliveries (Redis unreachable); not awaited, never throws. */
  forceClose(): void
}

// Callback deliveries in flight per process; they wait on receivers, not on the network's bytes.
const CALLBACK_CONCURRENCY = 20

/** The callback queue's worker: a queue of its own, so a slow receiver never holds a fetch slot. */
export function createCallbackWorker (deps: CallbackWorkerDeps): CallbackWorker {
  const { config, store } = deps
  const callbackDeps: CallbackDeps = {
    read: (id) => readJob(store, id, { withResults: false, offset: 0, limit: 1 }),
    callbackBody: deps.callbackRecords.callbackBody,
    record: deps.callbackRecords.recordCallback,
    deliver: async (url, webhookId, body) => {
      if (config.CALLBACK_SECRET === undefined) throw new Error('CALLBACK_SECRET is not set on this worker')
      const delivery = await deliverCallback(deps.dispatcher, url, { secret: config.CALLBACK_SECRET, webhookId, body })
      deps.metrics?.callbackAttempt(callbackOutcome(delivery))
      return delivery
    },
    maxAttempts: config.CALLBACK_MAX_ATTEMPTS
  }
  const worker = new Worker<CallbackData, CallbackOutcome>(CALLBACK_QUEUE, async (job: Job<CallbackData>) => {
    const outcome = await runCallback(callbackDataSchema.parse(job.data), job.attemptsMade + 1, callbackDeps)
    if (outcome === 'delivered' || outcome === 'failed') deps.metrics?.callbackFinished(outcome)
    // Thrown, so that BullMQ retries after its backoff; the attempt is already recorded.
    if (outcome === 'retry') throw new Error('callback not delivered; retrying')
    return outcome
  }, {
    connection: deps.connection,
    prefix: config.REDIS_PREFIX,
    concurrency: CALLBACK_CONCURRENCY,
    lockDuration: config.WORKER_LOCK_MS,
    stalledInterval: Math.max(1000, Math.floor(config.WORKER_LOCK_MS / 2)),
    autorun: true
  })
  worker.on('error', (err) => deps.logger.warn({ err }, 'callback worker error'))

  let closing: Promise<void> | undefined
  return {
    worker,
    close: () => (closing ??= worker.close()),
    // BullMQ hands a second close() the first one's stuck promise, so it is not awaited.
    forceClose: () => { worker.close(true).catch(() => {}) }
  }
}
