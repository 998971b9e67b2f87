import { z } from 'zod'
import type { StreamEntry } from '../events/hub.js'
import { OPEN_TENANT } from '../tenants/tenant.js'
import type { JobKeys } from './keys.js'
import type { JobListPage, ListQuery } from './listing.js'
import {
  JOB_STATES, jobOptionsSchema, resultErrorSchema,
  type JobOptions, type JobState, type ParkedUrl, type StoredResult
} from './schemas.js'

/**
 * The contract of the job store: the records of jobs in Redis and every change made to them.
 * The implementation is redis-store.ts; API documents are rendered from these records by
 * documents.ts, never here. Tenant admission, Idempotency-Keys and callback bookkeeping have
 * stores of their own (tenants/admission.ts, tenants/idempotency.ts, callbacks/record.ts).
 *
 * One job is the keys of jobKeys() (one Redis Cluster slot). Every change that more than one
 * process may make at once is one Lua script (lanes/step.lua, jobs/finish.lua), so it is atomic
 * and appends its event to the job's history in the same step; reads are MULTI snapshots.
 */
export interface JobStore {
  /** Pub/sub channel that carries the id of every job reaching a final state. */
  readonly channel: string
  /** The key names of one job (no I/O). */
  keysOf(id: string): JobKeys

  /**
   * Writes a new job as `queued`: its meta hash, its URL list and a first `state` event, with
   * the job TTL on each, in one MULTI; and adds it to its tenant's index for `list` (another
   * Redis Cluster slot, so a second MULTI sent with the first, never inside it). If either
   * fails, the record and the index entry are deleted again and the error thrown: a job is
   * either listed or was never created. Assumes the id is new; admission and Idempotency-Keys
   * are the caller's business (jobs/submit.ts).
   *
   * Resolves with the job as written, what `readRecord(job.id, ro)` would give right after
   * (page null without `ro`), built from what was written rather than read back: the
   * submission's answer costs no round trip of its own.
   */
  create(job: NewJob, ro?: ReadOptions): Promise<JobRecord>

  /**
   * One page of the tenant's jobs, newest first (by createdAt, then id), optionally only those
   * in some states (jobs/listing.ts). Reads the tenant's index (a sorted set), each candidate's
   * state (pipelined HMGET) and the records of those that match (pipelined HGETALL); changes
   * nothing but removing index entries whose record has expired. Not a snapshot: a job that
   * changes state between the reads is shown as it is last read, or left out when it no longer
   * matches. `next` continues strictly after the last job shown, so jobs created meanwhile never
   * shift a page (no duplicate, no gap). A page may be short when a filter rejects many jobs;
   * only a null `next` ends the list.
   */
  list(tenant: string, query: ListQuery): Promise<JobListPage>

  /**
   * Reads the job's meta and, with `withResults`, one page of URLs, stored results and held
   * indexes. Changes nothing. One MULTI, so the page agrees with the meta. Null when the job
   * does not exist (or has expired) or belongs to another tenant than `tenant`.
   */
  readRecord(id: string, ro: ReadOptions, tenant?: string): Promise<JobRecord | null>

  /**
   * Ends an unfinished job as `cancelled` or `failed` (jobs/finish.lua, atomic): every URL
   * without a result is counted under that state and gets a result event; the held indexes are
   * dropped, the owner's pending count goes down by the URLs not finished, the job's TTL starts
   * and its id is published on `channel`. A job already final is left as it is.
   * With `tenant`, a job of another tenant reads as missing and is not touched; without it the
   * owner is read first (a separate read: the owner never changes).
   * @returns the state the job had before, or 'missing'.
   */
  finish(id: string, state: 'cancelled' | 'failed', error: { code: string, message: string } | null, tenant?: string, now?: number): Promise<JobState | 'missing'>

  /**
   * One lane's turn (lanes/step.lua, atomic): records `finished` (result, counters, a
   * result event, the tenant's pending count down) unless that index already has a result or the
   * job is no longer running, or parks it (a `ParkedReport`, while the lane still holds it);
   * frees the lane's hold on it; starts a queued job; completes the job when this was its last
   * URL; keeps a live job's TTL moving; and, with `claim`, hands the lane the index it still
   * holds, else a parked one (of `want`'s host first, never of a `skip` host), else the next
   * untaken one. Steps asked for in one turn of the event loop share one pipeline (each script
   * stays atomic). Bodies never pass through here: a result names its body in the content store
   * by its sha256, written before this call. `gone` when the job no longer exists (expired or
   * purged).
   */
  step(id: string, tenant: string, lane: number, finished: LaneReport | null, claim: boolean | ClaimHints, now?: number): Promise<StepReply>

  /** The job's options and owner for a lane about to fetch (one HMGET); null when the job is gone. */
  laneContext(id: string): Promise<{ options: JobOptions, tenant: string } | null>

  /**
   * The stored result of one index (null while it has none, or past the end), for the content
   * route. Changes nothing; one MULTI. 'no-job' also for a job of another tenant than `tenant`.
   */
  result(id: string, index: number, tenant?: string): Promise<StoredResult | null | 'no-job'>

  /**
   * Deletes every Redis key of the job (record, URLs, results, holds, history, callback body)
   * in one DEL, so that it is missing everywhere at once. Assumes the job was ended first
   * (`finish`), which gave back its tenant's pending count. Bodies and the retention schedule
   * are the content store's (content/purge.ts). Idempotent.
   */
  purge(id: string): Promise<void>

  /**
   * Up to `count` (default 500) raw entries of the job's history after entry id `after`
   * ('0-0': from the start), in order. Changes nothing. events/entries.ts parses them.
   */
  events(id: string, after: string, count?: number): Promise<StreamEntry[]>

  /** The current states of many jobs in one pipeline; a missing job reads as null. Changes nothing. */
  states(ids: string[]): Promise<Array<string | null>>
}

export interface NewJob {
  /** A fresh job id (JOB_ID_PATTERN). */
  id: string
  tenant: string
  urls: string[]
  options: JobOptions
  callbackUrl?: string | undefined
  /** Creation time, ms since the epoch. */
  now: number
}

export interface ReadOptions {
  /** Read one page of results as well; false leaves `page` null. */
  withResults: boolean
  /** First index of the page. */
  offset: number
  /** Indexes in the page at most. */
  limit: number
}

/** A job as stored: its meta hash and, when asked for, one page of its results. */
export interface JobRecord {
  meta: StoredMeta
  page: ResultsPage | null
}

/** A page of a job's URLs as stored, `offset` first. */
export interface ResultsPage {
  offset: number
  limit: number
  /** The URLs of the page: fewer than `limit` at the end of the job. */
  urls: string[]
  /** The stored result of each URL of `urls`, null while it has none. */
  results: Array<StoredResult | null>
  /** Indexes some lane is fetching now. */
  held: ReadonlySet<number>
  /** Indexes of the page parked while their host is full (`host`) or paused (`pause`). */
  waiting: ReadonlyMap<number, ParkedUrl['waitingFor']>
}

/**
 * - `fetch`: the lane holds `index` now; `parked` is what the URL carried while it was parked.
 * - `idle`: nothing for this lane (or it did not claim).
 * - `blocked`: nothing but URLs parked on `hosts`, all of which the claim said to skip.
 * - `over`: the job is finished or cancelled.
 * - `gone`: the job no longer exists (expired or purged).
 */
export type StepReply =
  | { kind: 'fetch', index: number, url: string, parked: ParkedUrl | null }
  | { kind: 'idle' }
  | { kind: 'blocked', hosts: string[] }
  /** `completed`: this very report finished the job (step.lua's reply 2). */
  | { kind: 'over', completed?: boolean }
  | { kind: 'gone' }

/** What a claiming lane says about hosts (lanes/step.lua's skip and want). */
export interface ClaimHints {
  /**
   * Hosts this process knows to be full or paused: their parked URLs are not handed out, and
   * the cursor's next URLs on them are parked at once, without a round trip each (step.lua).
   */
  skip?: readonly string[]
  /** Those of `skip` that wait for a pause or a spacing: what the URLs parked ahead wait for. */
  paused?: readonly string[]
  /** A host the lane already holds a slot on: its parked URLs come first. */
  want?: string
}

/** A lane's report of an index it cannot fetch now: parked, the lane's hold on it freed. */
export interface ParkedReport {
  index: number
  park: ParkedUrl
}

/** What a lane reports in a step: a finished URL or a parked one. */
export type LaneReport = FinishedUrl | ParkedReport

export interface FinishedUrl {
  index: number
  /** With `sha256` set when its body is in the content store. */
  result: StoredResult
}

const num = z.coerce.number().int()
const optionalMs = z.string().optional().transform((s) => (s === undefined || s === '' ? null : Number(s)))

/** The meta hash as read back from Redis: strings, parsed and checked before use. */
export const storedMetaSchema = z.object({
  id: z.string(),
  tenant: z.string().default(OPEN_TENANT),
  state: z.enum(JOB_STATES),
  createdAt: num,
  startedAt: optionalMs,
  finishedAt: optionalMs,
  expiresAt: num,
  total: num,
  next: num,
  running: num,
  succeeded: num,
  failed: num,
  cancelled: num,
  bytes: num,
  options: z.string().transform((s) => jobOptionsSchema.parse(JSON.parse(s))),
  callbackUrl: z.string().optional().transform((s) => (s === '' ? undefined : s)),
  cbState: z.enum(['pending', 'delivered', 'failed']).optional(),
  cbAttempts: num.optional(),
  cbLastStatus: optionalMs,
  cbLastError: z.string().optional().transform((s) => (s === undefined || s === '' ? null : s)),
  error: z.string().optional().transform((s) => (s === undefined || s === '' ? null : resultErrorSchema.parse(JSON.parse(s))))
})
export type StoredMeta = z.infer<typeof storedMetaSchema>

/**
 * The result stored for a URL that had none when its job was cancelled or failed: finish.lua
 * writes it into the history, and readers show such URLs with it.
 */
export function unfinishedResult (state: 'cancelled' | 'failed', error: { message: string } | null): StoredResult {
  return {
    state,
    status: null,
    finalUrl: null,
    contentType: null,
    bytes: 0,
    durationMs: null,
    attempts: 0,
    error: state === 'cancelled'
      ? { code: 'CANCELLED', message: 'the job was cancelled before this URL finished' }
      : { code: 'INTERNAL', message: `not fetched: ${error?.message ?? 'the job failed'}` },
    hasContent: false,
    sha256: null
  }
}
