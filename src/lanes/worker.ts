import { DelayedError, WaitingError, Worker, type ConnectionOptions, type Job } from 'bullmq'
import { Redis } from 'ioredis'
import type { Dispatcher } from 'undici'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import type { ContentStore } from '../content/store.js'
import { fetchPage, type PageResult } from '../fetcher/fetch-page.js'
import { FETCH_QUEUE } from '../jobs/keys.js'
import { laneJobId } from '../jobs/queue.js'
import { laneDataSchema, type LaneData } from '../jobs/schemas.js'
import type { JobStore } from '../jobs/store.js'
import type { Metrics } from '../metrics/metrics.js'
import { createOomWait, keepLocksThroughOom, RedisFullError } from '../redis/oom.js'
import type { Politeness } from '../hosts/politeness.js'
import { ABORT_CANCELLED, ABORT_SHUTDOWN, runLane, type LaneDeps, type LaneOutcome } from './lane.js'

export interface LaneWorkerDeps {
  config: Config
  logger: Logger
  /** A connection for BullMQ (role `worker`); BullMQ duplicates it for its blocking reads. */
  connection: ConnectionOptions
  store: JobStore
  /** Where bodies of `keepContent` jobs go as they stream in. */
  content: ContentStore
  dispatcher: Dispatcher
  /** Fetch durations and bytes, lanes running. @defaultValue none */
  metrics?: Pick<Metrics, 'fetchDone' | 'laneStarted' | 'laneEnded'>
  /** The host rules (caps, pauses, robots.txt); without them URLs are fetched as claimed. */
  hosts?: Politeness
}

export interface LaneWorker {
  worker: Worker<LaneData, LaneOutcome>
  /** The jobs with lanes running in this process, and those lanes' numbers. */
  running(): ReadonlyMap<string, ReadonlySet<number>>
  /** Aborts one lane running here because its job is over (ABORT_CANCELLED). */
  cancel(jobId: string, lane: number): void
  /**
   * Stops claiming; in-flight fetches get `graceMs` to finish, then each lane is aborted with
   * ABORT_SHUTDOWN and hands its URL back. Resolves once BullMQ has closed; safe to call twice.
   */
  close(graceMs: number): Promise<void>
  /** Closes without waiting for the lanes (Redis unreachable); not awaited, never throws. */
  forceClose(): void
}

/** The fetch queue's worker: runs lanes (runLane) and moves them back in the queue between slices. */
export function createLaneWorker (deps: LaneWorkerDeps): LaneWorker {
  const { config } = deps
  const lanes = laneRegistry()
  let closing: Promise<void> | undefined
  const stopping = () => closing !== undefined
  const laneDeps: LaneDeps = {
    // A full Redis makes a lane wait for memory, not fail its job (redis/oom.ts).
    step: stepAndTidy(deps, oomWait(deps.logger, stopping)(deps.store.step)),
    laneContext: deps.store.laneContext,
    fetch: (url, options, signal, key) => measured(deps.metrics, signal, fetchPage(deps.dispatcher, url, options, signal, options.keepContent
      ? { sink: (chunks, meta, attempt) => deps.content.put(key, chunks, meta, { signal: attempt }) }
      : {})),
    ...(deps.hosts ? { hosts: deps.hosts } : {}),
    sliceMs: config.LANE_SLICE_MS,
    stopping
  }
  const worker = new Worker<LaneData, LaneOutcome>(FETCH_QUEUE, laneProcessor((data, signal) => lanes.track(data, () => counted(deps.metrics, () => runLane(data, laneDeps, signal)))), {
    connection: deps.connection,
    prefix: config.REDIS_PREFIX,
    concurrency: config.WORKER_CONCURRENCY,
    lockDuration: config.WORKER_LOCK_MS,
    stalledInterval: Math.max(1000, Math.floor(config.WORKER_LOCK_MS / 2)),
    maxStalledCount: 5,
    autorun: true
  })
  if (deps.connection instanceof Redis) keepLocksThroughOom(worker, deps.connection)
  worker.on('failed', (job, err) => onFailed(deps, job, err))
  worker.on('error', (err) => deps.logger.warn({ err }, 'worker error'))
  return {
    worker,
    running: () => lanes.active,
    cancel: (jobId, lane) => worker.cancelJob(laneJobId(jobId, lane), ABORT_CANCELLED),
    close: (graceMs) => (closing ??= closeAfterGrace(worker, graceMs)),
    // BullMQ hands a second close() the first one's stuck promise, so it is not awaited.
    forceClose: () => { worker.close(true).catch(() => {}) }
  }
}

/**
 * A step whose job has gone (purged, or expired) while its body was being stored: no result will
 * ever name that body, and the purge may have swept the job's bodies before it was complete, so
 * the job's bodies are removed once more.
 */
function stepAndTidy (deps: LaneWorkerDeps, step: LaneDeps['step']): LaneDeps['step'] {
  return async (jobId, tenant, lane, report, claim) => {
    const reply = await step(jobId, tenant, lane, report, claim)
    if (reply.kind === 'gone' && report !== null && 'result' in report && report.result.sha256 !== null) {
      await deps.content.deleteJob(jobId).catch((err: unknown) => deps.logger.warn({ err, jobId }, 'could not remove the body of a job that is gone'))
    }
    return reply
  }
}

/** BullMQ's side of a lane: runs it, then moves its job to the back (yield) or front (handback) of the queue. */
function laneProcessor (run: (data: LaneData, signal: AbortSignal) => Promise<LaneOutcome>) {
  return async (job: Job<LaneData>, token?: string, signal?: AbortSignal): Promise<LaneOutcome> => {
    const outcome = await run(laneDataSchema.parse(job.data), signal ?? new AbortController().signal).catch((err: unknown) => {
      // Shut down while waiting for a full Redis: hand the lane back as on SIGTERM.
      if (err instanceof RedisFullError) return 'handback' as const
      throw err
    })
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
  }
}

/** Records a fetch's duration and bytes; one cut short by cancel or shutdown is no fetch to count. */
async function measured (metrics: LaneWorkerDeps['metrics'], signal: AbortSignal, fetching: Promise<PageResult>): Promise<PageResult> {
  const page = await fetching
  if (!signal.aborted) metrics?.fetchDone(page.ok ? 'success' : 'error', page.durationMs / 1000, page.bytes)
  return page
}

/** Counts a lane as running while `run` is. */
async function counted<T> (metrics: LaneWorkerDeps['metrics'], run: () => Promise<T>): Promise<T> {
  metrics?.laneStarted()
  try {
    return await run()
  } finally {
    metrics?.laneEnded()
  }
}

function oomWait (logger: Logger, stopping: () => boolean) {
  return createOomWait({
    stopping,
    onFull: (err) => logger.warn({ err }, 'Redis is at its maxmemory: lanes wait for memory to free'),
    onRoom: (waitedMs) => logger.info({ waitedMs }, 'Redis has room again: lanes go on')
  })
}

/** The lanes running in this process by job id, for the cancel watch. */
function laneRegistry () {
  const active = new Map<string, Set<number>>()
  async function track<T> (data: LaneData, run: () => Promise<T>): Promise<T> {
    let lanes = active.get(data.jobId)
    if (!lanes) active.set(data.jobId, (lanes = new Set()))
    lanes.add(data.lane)
    try {
      return await run()
    } finally {
      lanes.delete(data.lane)
      if (lanes.size === 0) active.delete(data.jobId)
    }
  }
  return { active: active as ReadonlyMap<string, ReadonlySet<number>>, track }
}

/** Stops claiming at once; after `graceMs` the lanes still fetching are aborted and hand back. */
async function closeAfterGrace (worker: Worker<LaneData, LaneOutcome>, graceMs: number): Promise<void> {
  const timer = setTimeout(() => worker.cancelAllJobs(ABORT_SHUTDOWN), graceMs)
  try {
    await worker.close()
  } finally {
    clearTimeout(timer)
  }
}

/** A lane out of attempts (or stalled too often) fails its job: no worker will carry it on. */
function onFailed (deps: LaneWorkerDeps, job: Job<LaneData> | undefined, err: Error): void {
  if (!job) return
  const exhausted = job.attemptsMade >= (job.opts.attempts ?? 1) || /stalled more than/i.test(err.message)
  deps.logger.warn({ err, jobId: job.data.jobId, lane: job.data.lane, exhausted }, 'lane failed')
  if (!exhausted) return
  const parsed = laneDataSchema.safeParse(job.data)
  if (!parsed.success) return
  deps.store.finish(parsed.data.jobId, 'failed', { code: 'INTERNAL', message: 'a worker could not carry the job to its end' })
    .catch((e: unknown) => deps.logger.error({ err: e }, 'could not mark job failed'))
}
