import { DelayedError, WaitingError, Worker, type ConnectionOptions, type Job } from 'bullmq'
import type { Dispatcher } from 'undici'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import { fetchPage } from '../fetcher/fetch-page.js'
import { deliverCallback } from '../callbacks/deliver.js'
import { CALLBACK_QUEUE, FETCH_QUEUE } from '../jobs/keys.js'
import { laneJobId } from '../jobs/queue.js'
import { callbackDataSchema, laneDataSchema, type CallbackData, type LaneData } from '../jobs/schemas.js'
import { readJob } from '../jobs/documents.js'
import type { JobStore } from '../jobs/store.js'
import type { CallbackRecords } from '../callbacks/record.js'
import { runCallback, type CallbackOutcome } from '../callbacks/processor.js'
import { ABORT_CANCELLED, ABORT_SHUTDOWN, runLane, type LaneOutcome } from './lane.js'

export interface WorkerDeps {
  config: Config
  logger: Logger
  /** A connection for BullMQ (role `worker`); BullMQ duplicates it for its blocking reads. */
  connection: ConnectionOptions
  store: JobStore
  /** The callback bookkeeping of the jobs (callbacks/record.ts). */
  callbackRecords: CallbackRecords
  dispatcher: Dispatcher
}

export interface Workers {
  worker: Worker<LaneData, LaneOutcome>
  callbacks: Worker<CallbackData, CallbackOutcome>
  /** Hands back in-flight URLs after `graceMs` and stops; safe to call twice. */
  close(graceMs?: number): Promise<void>
}

// How often a worker process asks Redis whether the jobs it is fetching were cancelled.
const CANCEL_POLL_MS = 250

// Callback deliveries in flight per process; they wait on receivers, not on the network's bytes.
const CALLBACK_CONCURRENCY = 20

/** The fetch and callback workers of one process: the only `new Worker`s in the code base. */
export function createWorkers (deps: WorkerDeps): Workers {
  const { config, store, logger } = deps
  // jobId -> lane numbers running here, for cancellation.
  const active = new Map<string, Set<number>>()
  let closing: Promise<void> | undefined

  const laneDeps = {
    step: store.step,
    laneContext: store.laneContext,
    fetch: (url: string, options: Parameters<typeof fetchPage>[2], signal: AbortSignal) => fetchPage(deps.dispatcher, url, options, signal),
    sliceMs: config.LANE_SLICE_MS,
    stopping: () => closing !== undefined
  }

  const worker = new Worker<LaneData, LaneOutcome>(FETCH_QUEUE, async (job: Job<LaneData>, token?: string, signal?: AbortSignal) => {
    const data = laneDataSchema.parse(job.data)
    let lanes = active.get(data.jobId)
    if (!lanes) active.set(data.jobId, (lanes = new Set()))
    lanes.add(data.lane)
    let outcome: LaneOutcome
    try {
      outcome = await runLane(data, laneDeps, signal ?? new AbortController().signal)
    } finally {
      lanes.delete(data.lane)
      if (lanes.size === 0) active.delete(data.jobId)
    }
    if (outcome === 'yield') {
      // To the back of the queue: other jobs' lanes waiting behind this one run first.
      await job.moveToDelayed(Date.now(), token)
      throw new DelayedError()
    }
    if (outcome === 'handback') {
      // To the front of the queue, so the URL this lane held is fetched again soon.
      await job.moveToWait(token)
      throw new WaitingError()
    }
    return outcome
  }, {
    connection: deps.connection,
    prefix: config.REDIS_PREFIX,
    concurrency: config.WORKER_CONCURRENCY,
    lockDuration: config.WORKER_LOCK_MS,
    stalledInterval: Math.max(1000, Math.floor(config.WORKER_LOCK_MS / 2)),
    maxStalledCount: 5,
    autorun: true
  })

  worker.on('failed', (job, err) => {
    if (!job) return
    const exhausted = job.attemptsMade >= (job.opts.attempts ?? 1) || /stalled more than/i.test(err.message)
    logger.warn({ err, jobId: job.data.jobId, lane: job.data.lane, exhausted }, 'lane failed')
    if (!exhausted) return
    const parsed = laneDataSchema.safeParse(job.data)
    if (!parsed.success) return
    store.finish(parsed.data.jobId, 'failed', { code: 'INTERNAL', message: 'a worker could not carry the job to its end' })
      .catch((e: unknown) => logger.error({ err: e }, 'could not mark job failed'))
  })
  worker.on('error', (err) => logger.warn({ err }, 'worker error'))

  // A queue of its own: a slow callback receiver never holds a fetch slot.
  const callbackDeps = {
    read: (id: string) => readJob(store, id, { withResults: false, offset: 0, limit: 1 }),
    callbackBody: deps.callbackRecords.callbackBody,
    record: deps.callbackRecords.recordCallback,
    deliver: (url: string, webhookId: string, body: string) => {
      if (config.CALLBACK_SECRET === undefined) throw new Error('CALLBACK_SECRET is not set on this worker')
      return deliverCallback(deps.dispatcher, url, { secret: config.CALLBACK_SECRET, webhookId, body })
    },
    maxAttempts: config.CALLBACK_MAX_ATTEMPTS
  }
  const callbacks = new Worker<CallbackData, CallbackOutcome>(CALLBACK_QUEUE, async (job: Job<CallbackData>) => {
    const outcome = await runCallback(callbackDataSchema.parse(job.data), job.attemptsMade + 1, callbackDeps)
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
  callbacks.on('error', (err) => logger.warn({ err }, 'callback worker error'))

  const poller = setInterval(() => {
    const ids = [...active.keys()]
    if (ids.length === 0) return
    store.states(ids).then((states) => {
      states.forEach((state, i) => {
        const id = ids[i]
        if (id === undefined || state === 'running' || state === 'queued') return
        for (const lane of active.get(id) ?? []) worker.cancelJob(laneJobId(id, lane), ABORT_CANCELLED)
      })
    }, (err: unknown) => logger.debug({ err }, 'cancel poll failed'))
  }, CANCEL_POLL_MS)
  poller.unref()

  function close (graceMs = config.SHUTDOWN_GRACE_MS): Promise<void> {
    closing ??= (async () => {
      clearInterval(poller)
      const closed = Promise.all([worker.close(), callbacks.close()])
      // In-flight fetches get `graceMs` to finish; then each lane hands its URL back.
      const timer = setTimeout(() => worker.cancelAllJobs(ABORT_SHUTDOWN), graceMs)
      // With Redis unreachable a graceful close never ends (BullMQ cannot move its jobs); the
      // lanes' locks then lapse and another worker takes them over, as after a crash.
      let force: NodeJS.Timeout | undefined
      const forced = new Promise<void>((resolve) => {
        force = setTimeout(() => {
          logger.warn('workers did not close in time; closing them by force')
          // Not awaited: BullMQ hands a second close() the first one's stuck promise.
          worker.close(true).catch(() => {})
          callbacks.close(true).catch(() => {})
          resolve()
        }, graceMs + 5000)
      })
      try {
        await Promise.race([closed, forced])
      } finally {
        clearTimeout(timer)
        clearTimeout(force)
      }
    })()
    return closing
  }

  return { worker, callbacks, close }
}
