import type { PageResult, FetchOptions } from '../fetcher/fetch-page.js'
import type { LaneData, StoredResult, JobOptions } from '../jobs/schemas.js'
import type { FinishedUrl, StepReply } from '../jobs/store.js'

/** Why a lane's signal was aborted; BullMQ passes the reason given to `worker.cancelJob`. */
export const ABORT_CANCELLED = 'job-cancelled'
export const ABORT_SHUTDOWN = 'worker-shutdown'

export interface LaneDeps {
  step(jobId: string, tenant: string, lane: number, finished: FinishedUrl | null, claim: boolean): Promise<StepReply>
  laneContext(jobId: string): Promise<{ options: JobOptions, tenant: string } | null>
  /** Downloads one URL of the job; with `keepContent` its body goes to the content store under `key`. */
  fetch(url: string, options: FetchOptions & { keepContent: boolean }, signal: AbortSignal, key: { jobId: string, index: number }): Promise<PageResult>
  /** Milliseconds a lane works before it goes to the back of the queue. */
  sliceMs: number
  /** True once the worker is shutting down: lanes take no new URL. */
  stopping(): boolean
  now?: () => number
}

/**
 * How a lane run ended:
 * - `done`: the job has no URL left for this lane (or is over); the BullMQ job completes.
 * - `yield`: the lane used its time slice; it goes to the back of the queue to let others run.
 * - `handback`: the worker is shutting down; the URL in flight stays held by the lane and is
 *   fetched again by whichever worker runs the lane next.
 */
export type LaneOutcome = 'done' | 'yield' | 'handback'

/**
 * One lane of a job: takes the job's next URL from Redis, fetches it, writes its result, and
 * repeats. A pure function of its data, deps and signal; the BullMQ wiring is in worker.ts.
 */
export async function runLane (data: LaneData, deps: LaneDeps, signal: AbortSignal): Promise<LaneOutcome> {
  const now = deps.now ?? Date.now
  const started = now()
  const job = await deps.laneContext(data.jobId)
  if (job === null) return 'done'
  const { options, tenant } = job
  let finished: FinishedUrl | null = null
  for (;;) {
    const stopping = deps.stopping() || signal.reason === ABORT_SHUTDOWN
    const claim = !signal.aborted && !stopping && now() - started < deps.sliceMs
    const reply = await deps.step(data.jobId, tenant, data.lane, finished, claim)
    finished = null
    if (reply.kind === 'over' || reply.kind === 'gone') return 'done'
    if (reply.kind === 'idle') {
      if (claim) return 'done'
      return stopping ? 'handback' : signal.aborted ? 'done' : 'yield'
    }
    const page = await deps.fetch(reply.url, options, signal, { jobId: data.jobId, index: reply.index })
    if (signal.aborted) {
      // A cancelled job already counts this URL as cancelled; a shutdown leaves it held.
      return signal.reason === ABORT_SHUTDOWN ? 'handback' : 'done'
    }
    finished = { index: reply.index, result: toStoredResult(page) }
  }
}

export function toStoredResult (page: PageResult): StoredResult {
  return {
    state: page.ok ? 'succeeded' : 'failed',
    status: page.status,
    finalUrl: page.finalUrl,
    contentType: page.contentType,
    bytes: page.bytes,
    durationMs: Math.round(page.durationMs),
    attempts: page.attempts,
    error: page.error,
    hasContent: page.ok && page.sha256 !== null,
    sha256: page.ok ? page.sha256 : null
  }
}
