import type { ContentKey } from '../content/store.js'
import type { PageResult } from '../fetcher/fetch-page.js'
import type { LaneJob, Politeness } from '../hosts/politeness.js'
import type { Lease } from '../hosts/slots.js'
import type { LaneData, StoredResult, JobOptions } from '../jobs/schemas.js'
import type { ClaimHints, LaneReport, StepReply } from '../jobs/store.js'
import { fetchPolitely, type LaneFetchOptions } from './polite.js'

/** Why a lane's signal was aborted; BullMQ passes the reason given to `worker.cancelJob`. */
export const ABORT_CANCELLED = 'job-cancelled'
export const ABORT_SHUTDOWN = 'worker-shutdown'

/** Downloads one URL of a job; with `keepContent` its body goes to the content store under `key`. */
export type LaneFetch = (url: string, options: LaneFetchOptions, signal: AbortSignal, key: ContentKey) => Promise<PageResult>

export interface LaneDeps {
  step(jobId: string, tenant: string, lane: number, report: LaneReport | null, claim: boolean | ClaimHints): Promise<StepReply>
  laneContext(jobId: string): Promise<{ options: JobOptions, tenant: string } | null>
  /** Downloads one URL of the job; with `keepContent` its body goes to the content store under `key`. */
  fetch: LaneFetch
  /** The host rules (src/hosts); without them every URL is fetched as soon as it is claimed. */
  hosts?: Politeness
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
  const context = await deps.laneContext(data.jobId)
  if (context === null) return 'done'
  const job: LaneJob = { id: data.jobId, options: context.options }
  let report: LaneReport | null = null
  // A slot won by waiting (a `blocked` reply) or kept from the last fetch: the next claim asks
  // for its host's parked URLs first.
  let lease: Lease | null = null
  try {
    for (;;) {
      const stopping = deps.stopping() || signal.reason === ABORT_SHUTDOWN
      const claim = !signal.aborted && !stopping && now() - started < deps.sliceMs
      const hints: ClaimHints | null = claim && deps.hosts ? claimHints(deps.hosts.skip(job.id), lease) : null
      const reply = await deps.step(data.jobId, context.tenant, data.lane, report, hints ?? claim)
      report = null
      if (lease && reply.kind !== 'fetch') lease = await giveBack(deps, lease)
      if (reply.kind === 'over' || reply.kind === 'gone') return 'done'
      if (reply.kind === 'idle') {
        if (claim) return 'done'
        return stopping ? 'handback' : signal.aborted ? 'done' : 'yield'
      }
      if (reply.kind === 'blocked') {
        // Only URLs of blocked hosts are left: wait (for the rest of the slice) for any of them.
        lease = await deps.hosts?.wait(reply.hosts, job, signal, deps.sliceMs - (now() - started)) ?? null
        if (signal.aborted) lease = await giveBack(deps, lease)
        continue
      }
      ;({ report, lease } = await fetchOne(reply, job, deps, lease, signal))
      if (signal.aborted) {
        await giveBack(deps, lease)
        // A cancelled job already counts this URL as cancelled; a shutdown leaves it held.
        return signal.reason === ABORT_SHUTDOWN ? 'handback' : 'done'
      }
    }
  } catch (err) {
    // A lane that fails (Redis refused a step, robots.txt could not be read) gives back the
    // slot it holds: the gate renews every slot it holds, so a forgotten one never lapses.
    if (lease !== null) await giveBack(deps, lease).catch(() => {})
    throw err
  }
}

/** What a claim says about hosts: those blocked here, and the host of the slot the lane holds. */
function claimHints (blocked: ClaimHints, lease: Lease | null): ClaimHints {
  return lease ? { ...blocked, want: lease.host } : blocked
}

async function giveBack (deps: LaneDeps, lease: Lease | null): Promise<null> {
  if (lease) await deps.hosts?.after(lease, lease.host, null)
  return null
}

/** Fetches one claimed URL (through the host rules, if any) and says what to report. */
async function fetchOne (claimed: Extract<StepReply, { kind: 'fetch' }>, job: LaneJob, deps: LaneDeps, lease: Lease | null, signal: AbortSignal): Promise<{ report: LaneReport, lease: Lease | null }> {
  const { index, url } = claimed
  const key = { jobId: job.id, index }
  if (!deps.hosts) {
    const page = await deps.fetch(url, job.options, signal, key)
    return { report: { index, result: toStoredResult(page) }, lease: null }
  }
  const fetch = async (u: string, options: LaneFetchOptions, s: AbortSignal) => await deps.fetch(u, options, s, key)
  const outcome = await fetchPolitely(url, claimed.parked, job, { hosts: deps.hosts, fetch, now: deps.now ?? Date.now }, lease, signal)
  const kept = outcome.lease ?? null
  if ('park' in outcome) return { report: { index, park: outcome.park }, lease: kept }
  return { report: { index, result: toStoredResult(outcome.page) }, lease: kept }
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
