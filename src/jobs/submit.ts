import { createHash } from 'node:crypto'
import { ulid } from 'ulid'
import type { Config } from '../config.js'
import { NEAR_FULL_RETRY_AFTER_S, nearFullDetail, type RedisMemory } from '../redis/memory.js'
import { TrawlError, ValidationFailedError } from '../http/problems.js'
import type { Admission } from '../tenants/admission.js'
import { keyDigest, type IdempotencyKeys } from '../tenants/idempotency.js'
import { jobDocument, readJob } from './documents.js'
import type { CallbackQueueOptions } from './queue.js'
import type { JobDocument, SubmitBody } from './schemas.js'
import type { JobRecord, JobStore, NewJob, ReadOptions } from './store.js'

/**
 * The submit saga of `POST /jobs`: room in Redis, Idempotency-Key, admission, create, enqueue,
 * each undone when a later step fails, so that a failed submission leaves no key held, no URLs counted and no job
 * that nobody will run.
 */

export interface SubmitDeps {
  store: Pick<JobStore, 'create' | 'readRecord' | 'finish' | 'purge'>
  admission: Admission
  idempotency: IdempotencyKeys
  /** How full the API's Redis is (redis/memory.ts, shared with /readyz). */
  memory: RedisMemory
  /** Puts a created job's lanes (and its callback) on the queues: jobs/queue.ts enqueueJob. */
  enqueue(jobId: string, laneCount: number, callback: CallbackQueueOptions | null): Promise<void>
  config: Pick<Config, 'MAX_PENDING_URLS_PER_TENANT' | 'CALLBACK_SECRET' | 'CALLBACK_MAX_ATTEMPTS' | 'CALLBACK_RETRY_BASE_MS'>
  log: { info(obj: object, msg: string): void }
  /** A new job id; `j_<ulid>` unless a test fixes it. */
  newId?: () => string
}

export interface SubmitRequest {
  tenant: string
  body: SubmitBody
  /** The Idempotency-Key header, if sent. */
  idempotencyKey?: string | undefined
}

/** 202 with the new job as submitted (`queued`), or 200 with the job an Idempotency-Key is bound to. */
export interface SubmitAnswer {
  status: 200 | 202
  job: JobDocument
}

/** What the answer of a submission shows: the first page of results. */
const FIRST_PAGE = { withResults: true, offset: 0, limit: 100 }

/** Submits a job; throws the TrawlError the API answers with when it cannot. */
export async function submitJob (deps: SubmitDeps, request: SubmitRequest): Promise<SubmitAnswer> {
  const { tenant, body } = request
  if (body.callbackUrl !== undefined && deps.config.CALLBACK_SECRET === undefined) {
    throw new ValidationFailedError([{ path: '/callbackUrl', message: 'callbacks are off: the server has no CALLBACK_SECRET' }])
  }
  await refuseWhenRedisFull(deps)
  const id = deps.newId?.() ?? `j_${ulid()}`
  const key = request.idempotencyKey === undefined
    ? null
    : { tenant, digest: keyDigest(request.idempotencyKey), jobId: id, hash: requestHash(body) }
  if (key !== null) {
    const bound = await claimKey(deps, key)
    if (bound !== null) return { status: 200, job: bound }
  }
  let created: JobRecord
  try {
    created = await admitAndCreate(deps, { id, tenant, urls: body.urls, options: body.options, callbackUrl: body.callbackUrl, now: Date.now() }, FIRST_PAGE)
  } catch (err) {
    if (key !== null) await deps.idempotency.release(tenant, key.digest).catch(() => {})
    throw err
  }
  if (key !== null) {
    try {
      await deps.idempotency.bind(tenant, key.digest, id, key.hash)
    } catch (err) {
      // Nothing runs the job yet: take it back whole, or it would stay queued and its URLs
      // counted as pending for good.
      await deps.store.purge(id).catch(() => {})
      await deps.admission.unadmit(tenant, body.urls.length).catch(() => {})
      await deps.idempotency.release(tenant, key.digest).catch(() => {})
      throw err
    }
  }
  deps.log.info({ jobId: id, urls: body.urls.length, tenant }, 'job submitted')
  // The job as created, before the lanes exist: the answer shows it as submitted, `queued`.
  const job = jobDocument(created, Date.now())
  await enqueueOrFail(deps, id, Math.min(body.options.concurrency, body.urls.length), body.callbackUrl !== undefined)
  return { status: 202, job }
}

/** A stable hash of what a submission asks for, after defaults: equal requests, equal hashes. */
export function requestHash (body: SubmitBody): string {
  const canonical = JSON.stringify({
    urls: body.urls,
    options: { ...body.options, headers: Object.fromEntries(Object.entries(body.options.headers).sort()) },
    callbackUrl: body.callbackUrl ?? null
  })
  return createHash('sha256').update(canonical).digest('base64url')
}

/**
 * The room step, before anything is written: a Redis near its maxmemory would refuse the job's
 * writes, or accept the job and then refuse its lanes' results, so the submission is refused
 * with 503 UNAVAILABLE and a Retry-After instead.
 */
export async function refuseWhenRedisFull (deps: Pick<SubmitDeps, 'memory'>): Promise<void> {
  const state = await deps.memory.state()
  if (state.nearFull) throw new TrawlError('UNAVAILABLE', nearFullDetail(state), { retryAfter: NEAR_FULL_RETRY_AFTER_S })
}

/** An Idempotency-Key as the saga holds it: for `jobId`, by a request hashing to `hash`. */
export interface KeyRequest {
  tenant: string
  /** keyDigest() of the header. */
  digest: string
  jobId: string
  hash: string
}

/**
 * The Idempotency-Key step: null when this request now holds the key (as a lease, for
 * `key.jobId`), or the job the key is bound to (a retry of the same request). Throws
 * IDEMPOTENCY_KEY_REUSED for a different request, IDEMPOTENCY_IN_PROGRESS while the first one
 * runs. A key whose job has expired is free again: it is released and claimed once more.
 */
export async function claimKey (deps: Pick<SubmitDeps, 'idempotency' | 'store'>, key: KeyRequest): Promise<JobDocument | null> {
  const first = await claimOnce(deps, key)
  if (first !== 'expired') return first
  await deps.idempotency.release(key.tenant, key.digest)
  const second = await claimOnce(deps, key)
  if (second !== 'expired') return second
  throw new TrawlError('IDEMPOTENCY_IN_PROGRESS', 'The Idempotency-Key is being reused; retry shortly.', { retryAfter: 1 })
}

async function claimOnce (deps: Pick<SubmitDeps, 'idempotency' | 'store'>, key: KeyRequest): Promise<JobDocument | null | 'expired'> {
  const bound = await deps.idempotency.claim(key.tenant, key.digest, key.jobId, key.hash)
  if (bound === null) return null
  if (bound.requestHash !== key.hash) {
    throw new TrawlError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was sent before with a different request; use a new key for a new request.')
  }
  if (bound.state === 'pending') {
    throw new TrawlError('IDEMPOTENCY_IN_PROGRESS', 'The first request with this Idempotency-Key is still being processed; retry shortly.', { retryAfter: 1 })
  }
  return await readJob(deps.store, bound.jobId, FIRST_PAGE, key.tenant) ?? 'expired'
}

/**
 * The admission step: counts the job's URLs as pending for its tenant, then writes the job; the
 * count is given back when the write fails. Throws TOO_MANY_PENDING_URLS when they do not fit.
 */
export async function admitAndCreate (deps: Pick<SubmitDeps, 'admission' | 'store' | 'config'>, job: NewJob, ro?: ReadOptions): Promise<JobRecord> {
  const max = deps.config.MAX_PENDING_URLS_PER_TENANT
  if (!await deps.admission.admit(job.tenant, job.urls.length, max)) {
    throw new TrawlError('TOO_MANY_PENDING_URLS', `This tenant already has URLs waiting; at most ${max} may be pending at once. Retry when some jobs have finished.`, { retryAfter: 5 })
  }
  try {
    return await deps.store.create(job, ro)
  } catch (err) {
    await deps.admission.unadmit(job.tenant, job.urls.length).catch(() => {})
    throw err
  }
}

/** The enqueue step: a job whose lanes cannot be queued is ended `failed`, so nobody waits on it. */
export async function enqueueOrFail (deps: Pick<SubmitDeps, 'enqueue' | 'store' | 'config'>, id: string, laneCount: number, withCallback: boolean): Promise<void> {
  const { config } = deps
  const callback = withCallback ? { attempts: config.CALLBACK_MAX_ATTEMPTS, backoffMs: config.CALLBACK_RETRY_BASE_MS } : null
  try {
    await deps.enqueue(id, laneCount, callback)
  } catch (err) {
    await deps.store.finish(id, 'failed', { code: 'INTERNAL', message: 'the job could not be queued' }).catch(() => {})
    throw err
  }
}
