import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { runScript } from '../redis/scripts.js'
import { hostKeys, hostsChannel } from './keys.js'

/**
 * Per-host slots as leases, shared by every worker through Redis. Each method is one Lua script
 * on one host's keys (one Cluster slot), atomic on its own; none touches a job's keys.
 */
export interface HostSlots {
  /** Drops lapsed leases, then grants one unless the host is full, paused or spaced. */
  acquire(host: string, options: AcquireOptions): Promise<AcquireReply>
  /**
   * Gives a lease back (a second release changes nothing) and records the fetch's outcome:
   * `ok` resets the strike counter, `pause` and `strike` pause the host.
   */
  release(lease: Lease, outcome?: HostOutcome): Promise<ReleaseReply>
  /** Pauses a host for `ms` from now (Redis' clock); a longer pause already set stays. */
  pause(host: string, ms: number): Promise<ReleaseReply>
  /** Moves the leases' expiry to `leaseMs` from now; returns how many were still held. */
  renew(leases: readonly Lease[], leaseMs: number): Promise<number>
  /** The host as it is now (read only). */
  state(host: string): Promise<HostState>
}

/** A slot on a host, held until released or until it lapses. */
export interface Lease {
  host: string
  id: string
  /** The job whose `hostConcurrency` the lease also counts against. */
  jobId?: string
}

export interface AcquireOptions {
  /** Leases at once on the host, all holders together; 0: no cap. */
  limit: number
  /** Milliseconds a lease lives without renewal (WORKER_LOCK_MS). */
  leaseMs: number
  /** Milliseconds between two starts on this host (HOST_DELAY_MS or Crawl-delay); 0: none. */
  delayMs: number
  /** A lower cap for one job's leases on this host (`options.hostConcurrency`). */
  job?: { id: string, limit: number }
}

/**
 * - `granted`: the lease is held until `untilMs` unless renewed.
 * - `full` (the host) or `job-full` (the job's own cap): the soonest lease lapses at `untilMs`.
 * - `paused`, `spaced`: no start before `untilMs`.
 * `untilMs` is on Redis' clock; `waitMs` is the same instant as a delay from now.
 */
export type AcquireReply =
  | { kind: 'granted', lease: Lease, untilMs: number, waitMs: number }
  | { kind: 'full' | 'job-full' | 'paused' | 'spaced', untilMs: number, waitMs: number }

/** What a fetch's response says about its host. */
export type HostOutcome =
  | { kind: 'none' }
  | { kind: 'ok' }
  | { kind: 'pause', ms: number }
  | { kind: 'strike' }

export interface ReleaseReply {
  released: boolean
  /** Until when the host is paused after this call (ms, Redis' clock); 0: not paused by it. */
  pausedUntil: number
  /** The strike counter after this call (0 unless the outcome was a strike). */
  strikes: number
}

export interface HostState {
  inFlight: number
  /** Ms on Redis' clock; 0: not paused. */
  pausedUntil: number
  /** The spacing last used to start a fetch on the host. */
  delayMs: number
  /** Earliest next start (ms, Redis' clock); 0: now. */
  nextStartAt: number
  strikes: number
  /** Redis' clock when this was read. */
  now: number
}

export interface HostSlotsOptions {
  /** Key prefix (REDIS_PREFIX). */
  prefix: string
  /** First pause of a 429/503 without Retry-After, in ms; each next one doubles. @defaultValue 1000 */
  strikeBaseMs?: number
  /** Longest such pause, in ms. @defaultValue 60000 */
  strikeMaxMs?: number
  /** Ms after the last strike at which the counter starts over. @defaultValue 600000 */
  strikeMemoryMs?: number
}

const REFUSALS = ['granted', 'full', 'paused', 'spaced', 'job-full'] as const

/** The slots over `redis`; the scripts come from the one loader (src/redis/scripts.ts). */
export function createHostSlots (redis: Redis, options: HostSlotsOptions): HostSlots {
  const { prefix, strikeBaseMs = 1000, strikeMaxMs = 60_000, strikeMemoryMs = 600_000 } = options
  const channel = hostsChannel(prefix)
  // Lease ids: this process's tag and a counter; unique without a round trip.
  const tag = randomBytes(6).toString('base64url')
  let counter = 0

  async function acquire (host: string, o: AcquireOptions): Promise<AcquireReply> {
    const keys = hostKeys(prefix, host)
    const id = `${tag}.${(counter++).toString(36)}`
    const [code, untilMs, waitMs] = await runScript(redis, 'trawlHostAcquire',
      { slots: keys.slots, state: keys.state, job: o.job ? keys.job(o.job.id) : keys.slots },
      { lease: id, limit: o.limit, leaseMs: o.leaseMs, delayMs: o.delayMs, jobLimit: o.job?.limit ?? 0 })
    const kind = REFUSALS[code] ?? 'full'
    if (kind !== 'granted') return { kind, untilMs, waitMs }
    return { kind, lease: o.job ? { host, id, jobId: o.job.id } : { host, id }, untilMs, waitMs }
  }

  async function call (host: string, id: string, jobId: string | undefined, outcome: HostOutcome): Promise<ReleaseReply> {
    const keys = hostKeys(prefix, host)
    const [released, pausedUntil, strikes] = await runScript(redis, 'trawlHostRelease',
      { slots: keys.slots, state: keys.state, job: jobId === undefined ? keys.slots : keys.job(jobId), strikes: keys.strikes },
      {
        lease: id,
        outcome: outcome.kind,
        pauseMs: outcome.kind === 'pause' ? Math.max(0, Math.round(outcome.ms)) : 0,
        baseMs: strikeBaseMs,
        maxMs: strikeMaxMs,
        memoryMs: strikeMemoryMs,
        channel,
        host
      })
    return { released: released === 1, pausedUntil, strikes }
  }

  async function renew (leases: readonly Lease[], leaseMs: number): Promise<number> {
    // One call per host and job: a script stays within one host's slot.
    const groups = new Map<string, Lease[]>()
    for (const l of leases) {
      const k = `${l.host}\n${l.jobId ?? ''}`
      const group = groups.get(k)
      if (group) group.push(l)
      else groups.set(k, [l])
    }
    const counts = await Promise.all([...groups.values()].map((group) => {
      const first = group[0] as Lease
      const keys = hostKeys(prefix, first.host)
      return runScript(redis, 'trawlHostRenew', { slots: keys.slots, job: first.jobId === undefined ? keys.slots : keys.job(first.jobId) },
        { leaseMs, ids: group.map((l) => l.id).join(' ') })
    }))
    return counts.reduce((a: number, b: number) => a + b, 0)
  }

  async function state (host: string): Promise<HostState> {
    const keys = hostKeys(prefix, host)
    const [inFlight = 0, pausedUntil = 0, delayMs = 0, nextStartAt = 0, strikes = 0, now = 0] = await runScript(redis, 'trawlHostState', { slots: keys.slots, state: keys.state, strikes: keys.strikes }, {})
    return { inFlight, pausedUntil, delayMs, nextStartAt, strikes, now }
  }

  return {
    acquire,
    release: (lease, outcome = { kind: 'none' }) => call(lease.host, lease.id, lease.jobId, outcome),
    pause: (host, ms) => call(host, '', undefined, { kind: 'pause', ms }),
    renew,
    state
  }
}
