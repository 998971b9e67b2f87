import type { Redis } from 'ioredis'
import type { AcquireReply, HostOutcome, HostSlots, HostState, Lease, ReleaseReply } from './slots.js'

// The public face of the per-process host gate (gate.ts), apart so that gate.ts stays short.

/** Hosts a job cannot start on now: all of them (`skip`), and those of them that wait for a pause or a spacing (`paused`). */
export interface BlockedHosts {
  readonly skip: readonly string[]
  readonly paused: readonly string[]
}

/** What blockedFor answers while nothing is blocked: one shared value, read only. */
export const NOTHING_BLOCKED: BlockedHosts = Object.freeze({ skip: Object.freeze([]), paused: Object.freeze([]) })

/** What a lane asks of a host for one fetch. */
export interface EnterOptions {
  /** Fetches at once on the host, all workers together (HOST_CONCURRENCY); 0: no cap. */
  limit: number
  /** Milliseconds between two starts on the host (HOST_DELAY_MS, or its Crawl-delay if longer). */
  delayMs: number
  /** A lower cap for one job on this host (`options.hostConcurrency`). */
  job?: { id: string, limit: number }
}

/** Why a URL cannot start on its host now; the job document's `waitingFor`. */
export type WaitingFor = 'host' | 'pause'

/** `tryEnter`'s answer: a lease, or why not and until when (ms on Redis' clock; 0: unknown). */
export type Entry = { lease: Lease } | { lease: null, waitingFor: WaitingFor, untilMs: number }

export interface HostGate {
  /**
   * Resolves with a lease once the host lets one more fetch start. While it cannot, the call
   * waits without asking Redis: a release on any worker wakes it (pub/sub), a pause or the
   * spacing ends on a timer, and a fallback timer (about `leaseMs`) covers a lost message and
   * a dead holder's lease lapsing. Rejects with `signal.reason` when aborted.
   */
  enter(host: string, options: EnterOptions, signal?: AbortSignal): Promise<Lease>
  /**
   * `enter` on several hosts at once: resolves with a lease from whichever grants one first
   * (a lane whose job has URLs parked on several blocked hosts waits for any of them).
   */
  enterAny(wanted: ReadonlyArray<{ host: string, options: EnterOptions }>, signal?: AbortSignal): Promise<Lease>
  /**
   * One attempt, never waiting. While this process already knows the host is blocked (a
   * refusal not yet followed by a release, a timer or a message) it answers without Redis.
   */
  tryEnter(host: string, options: EnterOptions): Promise<Entry>
  /**
   * Gives the lease back and records what the response said (see `hostOutcome`); this
   * process's waiters on the host ask again at once.
   */
  leave(lease: Lease, outcome?: HostOutcome): Promise<ReleaseReply>
  /** Records what a response fetched without a lease said about its host (a pause, a strike). */
  record(host: string, outcome: HostOutcome): Promise<ReleaseReply>
  /** Pauses a host for every worker, `ms` from now. */
  pause(host: string, ms: number): Promise<ReleaseReply>
  /**
   * Hosts this process knows a job cannot start on now (a refusal not yet followed by a
   * wake) or that already have waiters of the job here: a lane leaves their parked URLs be.
   */
  blockedFor(jobId: string): BlockedHosts
  /**
   * True when this process has reason to send the host's fetches through the gate even with
   * no cap or spacing: a pause it saw or was told of (until a grant), or waiters on it.
   */
  watching(host: string): boolean
  /**
   * True when a pause on the host was seen or told of (the channel) since this process was
   * last granted a slot on it: a slot kept from an earlier fetch must ask Redis again before
   * the next one, or it would start during a pause set meanwhile.
   */
  told(host: string): boolean
  /** The host's state in Redis, with the number of this process's waiters on it. */
  state(host: string): Promise<HostState & { waiting: number }>
  /** Redis commands sent so far (scripts, renewals, subscriptions): a waiter adds none. */
  readonly commands: number
  /**
   * Hosts this process has waiters on that are paused (a 429 or 503 paused them), for
   * `trawl_hosts_paused`: a paused host that nobody here waits for holds nothing back here.
   */
  pausedHosts(): number
  /** Leases this process holds (and renews every `leaseMs / 2`). */
  readonly held: number
  /** Leases found lapsed at renewal (the process stalled longer than `leaseMs`). */
  readonly lost: number
  /** Ends every wait (rejecting it) and stops renewing; the subscriber stays the caller's. */
  close(): Promise<void>
}

export interface HostGateOptions {
  slots: HostSlots
  /** A connection of role `subscriber`, for this gate alone. */
  subscriber: Redis
  prefix: string
  /** Lease lifetime without renewal, in ms (WORKER_LOCK_MS). */
  leaseMs: number
  /** Longest wait for a full host without asking again, in ms. @defaultValue leaseMs */
  fallbackMs?: number
}

// The gate's own bookkeeping (gate.ts), not part of its public face.

// One wait for a lease, on one or more hosts (enterAny): the first host to grant settles it.
export interface Waiter {
  resolve(lease: Lease): void
  reject(err: unknown): void
  settled: boolean
  queues: Queue[]
}
export interface Ticket { w: Waiter, options: EnterOptions }

// One per host and job (no job: every job without its own cap): the waiters of this process,
// FIFO, and what Redis last refused.
export interface Queue {
  key: string
  host: string
  job: string
  tickets: Ticket[]
  // What Redis last refused; `paused`: a pause (429/503), not a spacing (counted by pausedHosts()).
  blocked: { waitingFor: WaitingFor, untilMs: number, paused: boolean } | null
  timer?: NodeJS.Timeout
  draining: boolean
  // A wake came while a request was on its way: its refusal may be stale.
  woken: boolean
}

export const reason = (r: AcquireReply): WaitingFor => (r.kind === 'paused' || r.kind === 'spaced' ? 'pause' : 'host')
