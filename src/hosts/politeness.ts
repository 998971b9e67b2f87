import type { PageResult } from '../fetcher/fetch-page.js'
import type { JobOptions, WaitingFor } from '../jobs/schemas.js'
import { NOTHING_BLOCKED, type BlockedHosts, type EnterOptions, type HostGate } from './gate.js'
import { outcomeOf } from './outcome.js'
import type { Robots } from './robots.js'
import type { HostOutcome, Lease } from './slots.js'

/**
 * The lanes' face of src/hosts: what a lane asks before it fetches a URL (robots.txt, a slot
 * on the host) and tells after (the slot back, a pause). A job that needs none of it (no cap,
 * no spacing, robots ignored, no pause known for the host) costs no Redis command per URL.
 */

/** A job as the lane runs it. */
export interface LaneJob {
  id: string
  options: JobOptions
}

/**
 * - `go`: fetch now, holding `lease` (null: the host needs no slot for this job);
 * - `wait`: the host is full or paused: park the URL;
 * - `disallowed`: robots.txt says no (or could not be read): end the URL without fetching.
 */
export type Admission =
  | { kind: 'go', lease: Lease | null }
  | { kind: 'wait', waitingFor: WaitingFor }
  | { kind: 'disallowed', message: string }

export interface Politeness {
  /** Hosts whose parked URLs of the job a claim should leave be, and which of them are paused (HostGate.blockedFor). */
  skip(jobId: string): BlockedHosts
  /**
   * True when fetching a URL of `job` on `host` asks nothing of the host rules now: robots.txt
   * ignored, no cap, no spacing, no pause or crawl-delay known. The lane then fetches without
   * `admit`, and calls `after` only for an answer that pauses the host (429, 503).
   */
  unguarded(host: string, job: LaneJob): boolean
  /** Before fetching `url` (on `host`): robots.txt, then a slot unless `lease` is one already. */
  admit(url: string, host: string, job: LaneJob, lease: Lease | null): Promise<Admission>
  /**
   * Waits, sending nothing to Redis while the hosts stay blocked, for a slot on any of `hosts`;
   * null after `ms` or once `signal` aborts.
   */
  wait(hosts: readonly string[], job: LaneJob, signal: AbortSignal, ms: number): Promise<Lease | null>
  /** After a fetch (or its abort): the slot back, and what the answer said about the host. */
  after(lease: Lease | null, host: string, page: PageResult | null): Promise<void>
  /**
   * After a fetch that went well: the lease kept for the lane's next URL on the same host
   * (no release and acquire in between), or null once it was given back. A lease is kept at
   * most `LEASE_REUSES` times, and never across a spacing or a pause, so waiters elsewhere get
   * their turn at the next release.
   */
  reuse(lease: Lease, host: string, page: PageResult, job: LaneJob): Promise<Lease | null>
}

export interface PolitenessOptions {
  /** The process's gate, or its creation under way (it subscribes first). */
  gate: HostGate | Promise<HostGate>
  /** Used for jobs with `robots: 'obey'`. */
  robots: Robots
  /** HOST_CONCURRENCY: fetches at once per host, whole service; 0: no cap. */
  hostConcurrency: number
  /** HOST_DELAY_MS: ms between two starts on one host. */
  hostDelayMs: number
  /** Told of every pause or strike a response put on its host. */
  onPause?: (status: 429 | 503) => void
}

// Crawl-delays learnt from robots.txt, per host, kept for the hosts seen most recently.
const DELAYS_MAX = 10_000
/** Fetches one lease may serve in a row before it is given back (see `reuse`). */
export const LEASE_REUSES = 8

export function createPoliteness (o: PolitenessOptions): Politeness {
  const { robots } = o
  const crawlDelays = new Map<string, number>()
  const uses = new WeakMap<Lease, number>()
  const gateReady = Promise.resolve(o.gate)
  // Known once created; until then nothing is known to be blocked or watched.
  let known: HostGate | null = null
  gateReady.then((g) => { known = g }, () => {})

  function enterOptions (host: string, job: LaneJob): EnterOptions {
    const limit = o.hostConcurrency
    const own = job.options.hostConcurrency
    const delayMs = Math.max(o.hostDelayMs, crawlDelays.get(host) ?? 0)
    if (own === undefined || (limit > 0 && own >= limit)) return { limit, delayMs }
    return { limit, delayMs, job: { id: job.id, limit: own } }
  }

  // No cap, no spacing, no pause known here: the fetch needs no slot (and no Redis command).
  const free = (host: string, job: LaneJob): boolean => o.hostConcurrency === 0 && o.hostDelayMs === 0 &&
    job.options.hostConcurrency === undefined && !((crawlDelays.get(host) ?? 0) > 0) && !(known?.watching(host) ?? false)

  async function checkRobots (url: string, host: string): Promise<string | null> {
    const verdict = await robots.allowed(url)
    if (crawlDelays.size >= DELAYS_MAX && !crawlDelays.has(host)) crawlDelays.delete(crawlDelays.keys().next().value as string)
    crawlDelays.set(host, verdict.crawlDelayMs)
    if (verdict.allowed) return null
    return verdict.source === 'unreachable'
      ? 'robots.txt could not be read (5xx, 429 or no answer): everything is disallowed for now (RFC 9309)'
      : 'disallowed by the host\'s robots.txt'
  }

  async function admit (url: string, host: string, job: LaneJob, lease: Lease | null): Promise<Admission> {
    const gate = await gateReady
    if (job.options.robots === 'obey') {
      const refusal = await checkRobots(url, host)
      if (refusal !== null) {
        if (lease) await gate.leave(lease)
        return { kind: 'disallowed', message: refusal }
      }
    }
    if (lease) {
      if (!gate.told(host)) return { kind: 'go', lease }
      // A pause came since the slot was won: ask again, as anyone would.
      await gate.leave(lease)
    }
    if (free(host, job)) return { kind: 'go', lease: null }
    const entry = await gate.tryEnter(host, enterOptions(host, job))
    return entry.lease ? { kind: 'go', lease: entry.lease } : { kind: 'wait', waitingFor: entry.waitingFor }
  }

  async function wait (hosts: readonly string[], job: LaneJob, signal: AbortSignal, ms: number): Promise<Lease | null> {
    const ac = new AbortController()
    const timer = setTimeout(() => ac.abort(new Error('wait over')), ms)
    const onAbort = () => ac.abort(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    if (signal.aborted) onAbort()
    try {
      const gate = await gateReady
      return await gate.enterAny(hosts.map((host) => ({ host, options: enterOptions(host, job) })), ac.signal)
    } catch {
      return null
    } finally {
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
    }
  }

  async function after (lease: Lease | null, host: string, page: PageResult | null): Promise<void> {
    const outcome: HostOutcome = page === null ? { kind: 'none' } : outcomeOf(page.status ?? 0, page.pause?.retryAfterMs)
    if ((outcome.kind === 'pause' || outcome.kind === 'strike') && (page?.status === 429 || page?.status === 503)) o.onPause?.(page.status)
    const gate = await gateReady
    if (lease) await gate.leave(lease, outcome)
    else if (outcome.kind === 'pause' || outcome.kind === 'strike') await gate.record(host, outcome)
  }

  async function reuse (lease: Lease, host: string, page: PageResult, job: LaneJob): Promise<Lease | null> {
    const n = (uses.get(lease) ?? 0) + 1
    if (n < LEASE_REUSES && !page.pause && page.status !== null && enterOptions(host, job).delayMs === 0) {
      uses.set(lease, n)
      return lease
    }
    await after(lease, host, page)
    return null
  }

  const unguarded = (host: string, job: LaneJob): boolean => job.options.robots !== 'obey' && free(host, job)

  return { skip: (jobId) => known?.blockedFor(jobId) ?? NOTHING_BLOCKED, unguarded, admit, wait, after, reuse }
}
