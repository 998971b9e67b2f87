import type { Redis, Result } from 'ioredis'
import { z } from 'zod'
import { finishedChannel, idempotencyKey, jobKeys, tenantPendingKey } from './keys.js'
import {
  FINAL_JOB_STATES, jobOptionsSchema, resultErrorSchema, storedResultSchema,
  type JobDocument, type JobOptions, type JobState, type JobSummary, type ResultItem, type StoredResult
} from './schemas.js'
import { admitScript, claimKeyScript, finishScript, stepScript } from './scripts.js'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    trawlStep(meta: string, urls: string, results: string, content: string, held: string, events: string, pending: string,
      lane: string, index: string, result: string, outcome: string, bytes: string, body: Buffer | string,
      now: string, ttl: string, channel: string, claim: string, keep: string): Result<Array<number | string>, Context>
    trawlFinish(meta: string, urls: string, results: string, content: string, held: string, events: string, pending: string,
      state: string, error: string, now: string, ttl: string, channel: string, result: string, tenant: string): Result<string, Context>
    trawlAdmit(pending: string, n: string, max: string): Result<number, Context>
    trawlClaimKey(key: string, value: string, ttl: string): Result<string | null, Context>
  }
}

// How long a claimed Idempotency-Key waits for its job to be created.
const IDEMPOTENCY_LEASE_MS = 60_000

const num = z.coerce.number().int()
const optionalMs = z.string().optional().transform((s) => (s === undefined || s === '' ? null : Number(s)))

/** The meta hash as read back from Redis: strings, parsed and checked before use. */
const storedMetaSchema = z.object({
  id: z.string(),
  tenant: z.string().default('public'),
  state: z.enum(['queued', 'running', 'completed', 'failed', 'cancelled']),
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
type StoredMeta = z.infer<typeof storedMetaSchema>

export interface NewJob {
  id: string
  tenant: string
  urls: string[]
  options: JobOptions
  callbackUrl?: string | undefined
  now: number
}

export interface ReadOptions {
  /** Leave `results` and `page` out. */
  withResults: boolean
  offset: number
  limit: number
}

export type StepReply =
  | { kind: 'fetch', index: number, url: string }
  | { kind: 'idle' }
  | { kind: 'over' }

export interface FinishedUrl {
  index: number
  result: StoredResult
  body: Buffer | null
}

/** One entry of a job's history, as the event stream sends it. */
export type JobEvent =
  | { id: string, event: 'state', data: JobSummary, final: boolean }
  | { id: string, event: 'result', data: ResultItem, final: false }

export type JobStore = ReturnType<typeof createJobStore>

/**
 * Reads and changes job records in Redis. Every change that more than one process may make at
 * once goes through a Lua script (see scripts.ts); reads are MULTI snapshots.
 */
export function createJobStore (redis: Redis, opts: { prefix: string, ttlSeconds: number }) {
  const ttlMs = opts.ttlSeconds * 1000
  const channel = finishedChannel(opts.prefix)
  redis.defineCommand('trawlStep', { numberOfKeys: 7, lua: stepScript })
  redis.defineCommand('trawlFinish', { numberOfKeys: 7, lua: finishScript })
  redis.defineCommand('trawlAdmit', { numberOfKeys: 1, lua: admitScript })
  redis.defineCommand('trawlClaimKey', { numberOfKeys: 1, lua: claimKeyScript })
  const pendingKey = (tenant: string) => tenantPendingKey(opts.prefix, tenant)
  const keysOf = (id: string) => jobKeys(opts.prefix, id)

  async function create (job: NewJob): Promise<void> {
    const k = keysOf(job.id)
    const meta: Record<string, string | number> = {
      id: job.id,
      tenant: job.tenant,
      state: 'queued',
      createdAt: job.now,
      expiresAt: job.now + ttlMs,
      total: job.urls.length,
      next: 0,
      running: 0,
      succeeded: 0,
      failed: 0,
      cancelled: 0,
      bytes: 0,
      options: JSON.stringify(job.options),
      callbackUrl: job.callbackUrl ?? ''
    }
    if (job.callbackUrl !== undefined) Object.assign(meta, { cbState: 'pending', cbAttempts: 0 })
    const tx = redis.multi()
    tx.hset(k.meta, meta)
    tx.xadd(k.events, '*', 'e', 'state', 'm', JSON.stringify(Object.entries(meta).flat().map(String)))
    // Bounded argument lists keep each command small for Redis' argument buffer.
    for (let i = 0; i < job.urls.length; i += 1000) tx.rpush(k.urls, ...job.urls.slice(i, i + 1000))
    tx.pexpire(k.meta, ttlMs)
    tx.pexpire(k.urls, ttlMs)
    tx.pexpire(k.events, ttlMs)
    await tx.exec()
  }

  /** The job as the API shows it; null when it does not exist or belongs to another tenant. */
  async function read (id: string, ro: ReadOptions, tenant?: string): Promise<JobDocument | null> {
    const k = keysOf(id)
    const tx = redis.multi().hgetall(k.meta)
    const indexes: number[] = []
    if (ro.withResults) {
      for (let n = 0; n < ro.limit; n++) indexes.push(ro.offset + n)
      tx.lrange(k.urls, ro.offset, ro.offset + ro.limit - 1).hmget(k.results, ...indexes.map(String)).hvals(k.held)
    }
    const replies = await tx.exec()
    if (replies === null) throw new Error('transaction aborted')
    for (const [err] of replies) if (err) throw err
    const rawMeta = replies[0]?.[1] as Record<string, string>
    if (!rawMeta || Object.keys(rawMeta).length === 0) return null
    const meta = storedMetaSchema.parse(rawMeta)
    if (tenant !== undefined && meta.tenant !== tenant) return null
    const doc: JobDocument = summarize(meta, Date.now())
    if (!ro.withResults) return doc
    const urls = replies[1]?.[1] as string[]
    const stored = replies[2]?.[1] as Array<string | null>
    const held = new Set((replies[3]?.[1] as string[]).map(Number))
    doc.results = urls.map((url, i) => resultItem(meta, ro.offset + i, url, stored[i] ?? null, held))
    const nextOffset = ro.offset + ro.limit
    doc.page = {
      offset: ro.offset,
      limit: ro.limit,
      next: nextOffset < meta.total ? `/jobs/${id}?offset=${nextOffset}&limit=${ro.limit}` : null
    }
    return doc
  }

  /** Ends an unfinished job as cancelled or failed; returns the state it had ('missing' if none). */
  async function finish (id: string, state: 'cancelled' | 'failed', error: { code: string, message: string } | null, tenant?: string, now = Date.now()): Promise<JobState | 'missing'> {
    const k = keysOf(id)
    const owner = tenant ?? await redis.hget(k.meta, 'tenant') ?? 'public'
    const before = await redis.trawlFinish(k.meta, k.urls, k.results, k.content, k.held, k.events, pendingKey(owner),
      state, error ? JSON.stringify(error) : '', String(now), String(ttlMs), channel,
      JSON.stringify(unfinishedResult(state, error)), tenant ?? '')
    return before as JobState | 'missing'
  }

  // Steps asked for in one turn of the event loop (many lanes finishing together) go to Redis
  // as one pipeline: each script stays atomic, and the round trips and wake-ups are shared.
  type StepArgs = Parameters<Redis['trawlStep']>
  let queued: Array<{ args: StepArgs, resolve: (r: Array<number | string>) => void, reject: (e: unknown) => void }> = []
  function batchedStep (args: StepArgs): Promise<Array<number | string>> {
    return new Promise((resolve, reject) => {
      if (queued.push({ args, resolve, reject }) === 1) setImmediate(flushSteps)
    })
  }
  function flushSteps () {
    const batch = queued
    queued = []
    const pipeline = redis.pipeline()
    for (const { args } of batch) pipeline.trawlStep(...args)
    pipeline.exec().then((replies) => {
      batch.forEach((b, i) => {
        const [err, reply] = replies?.[i] ?? [new Error('no reply'), null]
        if (err) b.reject(err)
        else b.resolve(reply as Array<number | string>)
      })
    }, (err: unknown) => { for (const b of batch) b.reject(err) })
  }

  /** A lane reports what it finished and, if `claim`, takes the next index of the job. */
  async function step (id: string, tenant: string, lane: number, finished: FinishedUrl | null, claim: boolean, now = Date.now()): Promise<StepReply> {
    const k = keysOf(id)
    const keep = finished?.body != null
    const reply = await batchedStep([k.meta, k.urls, k.results, k.content, k.held, k.events, pendingKey(tenant),
      String(lane),
      String(finished?.index ?? -1),
      finished ? JSON.stringify(finished.result) : '',
      finished?.result.state === 'succeeded' ? 'succeeded' : 'failed',
      String(finished?.result.bytes ?? 0),
      keep ? finished.body as Buffer : '',
      String(now), String(ttlMs), channel, claim ? '1' : '0', keep ? '1' : '0'])
    const code = Number(reply[0])
    if (code === 1) return { kind: 'fetch', index: Number(reply[1]), url: String(reply[2]) }
    if (code === 0) return { kind: 'idle' }
    return { kind: 'over' }
  }

  /** The job's options and owner, for a lane about to fetch its URLs; null when the job is gone. */
  async function laneContext (id: string): Promise<{ options: JobOptions, tenant: string } | null> {
    const [options, tenant] = await redis.hmget(keysOf(id).meta, 'options', 'tenant')
    return options == null ? null : { options: jobOptionsSchema.parse(JSON.parse(options)), tenant: tenant ?? 'public' }
  }

  /**
   * Counts `n` more pending URLs for the tenant if they fit under `max`; false when they do not.
   * Every admitted URL is counted down once: when its result is written, or when its job ends.
   */
  async function admit (tenant: string, n: number, max: number): Promise<boolean> {
    return (await redis.trawlAdmit(pendingKey(tenant), String(n), String(max))) >= 0
  }

  /** Gives back URLs admitted for a job that could not be created. */
  async function unadmit (tenant: string, n: number): Promise<void> {
    await redis.decrby(pendingKey(tenant), n)
  }

  /**
   * Claims an Idempotency-Key for a job about to be created, unless someone holds it already:
   * then their claim is returned. A claim is a short lease (`pending`) until bind() records the
   * created job; a request that dies in between frees the key within a minute.
   */
  async function claimIdempotencyKey (tenant: string, keyDigest: string, jobId: string, requestHash: string): Promise<{ state: 'pending' | 'bound', jobId: string, requestHash: string } | null> {
    const existing = await redis.trawlClaimKey(idempotencyKey(opts.prefix, tenant, keyDigest), `pending ${jobId} ${requestHash}`, String(IDEMPOTENCY_LEASE_MS))
    if (existing === null) return null
    const [state = '', boundId = '', boundHash = ''] = existing.split(' ')
    return { state: state === 'bound' ? 'bound' : 'pending', jobId: boundId, requestHash: boundHash }
  }

  /** The job exists: the key now answers with it for as long as the job can be read. */
  async function bindIdempotencyKey (tenant: string, keyDigest: string, jobId: string, requestHash: string): Promise<void> {
    await redis.set(idempotencyKey(opts.prefix, tenant, keyDigest), `bound ${jobId} ${requestHash}`, 'PX', 2 * ttlMs, 'XX')
  }

  async function releaseIdempotencyKey (tenant: string, keyDigest: string): Promise<void> {
    await redis.del(idempotencyKey(opts.prefix, tenant, keyDigest))
  }

  /** The stored body of one result, or why there is none. */
  async function content (id: string, index: number, tenant?: string): Promise<{ body: Buffer, contentType: string | null } | 'no-job' | 'no-content'> {
    const k = keysOf(id)
    const [[e1, owner], [e2, raw], [e3, body]] = await redis.multi()
      .hget(k.meta, 'tenant').hget(k.results, String(index)).hgetBuffer(k.content, String(index)).exec() as Array<[Error | null, unknown]> as [[Error | null, string | null], [Error | null, string | null], [Error | null, Buffer | null]]
    if (e1 ?? e2 ?? e3) throw (e1 ?? e2 ?? e3)
    if (owner === null || (tenant !== undefined && owner !== tenant)) return 'no-job'
    if (raw === null || body === null) return 'no-content'
    const result = storedResultSchema.parse(JSON.parse(raw))
    return { body, contentType: result.contentType }
  }

  /** Up to `count` events of the job's history after event id `after` ('0-0': from the start). */
  async function events (id: string, after: string, count = 500): Promise<JobEvent[]> {
    const entries = await redis.xrange(keysOf(id).events, `(${after}`, '+', 'COUNT', count)
    return entries.map(([eventId, fields]) => parseEvent(id, eventId, fields))
  }

  /** The callback body: the first call fixes it, later calls (retries) get the same bytes. */
  async function callbackBody (id: string, body: string): Promise<string> {
    const key = keysOf(id).callbackBody
    const [[setErr], [err, fixed]] = await redis.multi().set(key, body, 'PX', ttlMs, 'NX').get(key).exec() as [[Error | null, unknown], [Error | null, string | null]]
    if (setErr ?? err) throw (setErr ?? err)
    return fixed ?? body
  }

  /** Records a delivery attempt in the job record (the job's own state never changes). */
  async function recordCallback (id: string, r: { state: 'pending' | 'delivered' | 'failed', attempts: number, lastStatus: number | null, lastError: string | null }): Promise<void> {
    const k = keysOf(id)
    // Only while the record exists: a late attempt must not recreate an expired job.
    if (await redis.exists(k.meta) === 0) return
    await redis.hset(k.meta, { cbState: r.state, cbAttempts: r.attempts, cbLastStatus: r.lastStatus ?? '', cbLastError: r.lastError ?? '' })
  }

  /** Current states of many jobs in one round trip; a missing job reads as null. */
  async function states (ids: string[]): Promise<Array<string | null>> {
    if (ids.length === 0) return []
    const p = redis.pipeline()
    for (const id of ids) p.hget(keysOf(id).meta, 'state')
    const replies = await p.exec()
    return (replies ?? []).map(([err, v]) => (err ? null : (v as string | null)))
  }

  return { create, read, finish, step, laneContext, admit, unadmit, claimIdempotencyKey, bindIdempotencyKey, releaseIdempotencyKey, content, events, states, callbackBody, recordCallback, channel, keysOf }
}

/** Turns a stream entry (field, value, field, value...) into the event the API sends. */
export function parseEvent (jobId: string, eventId: string, fields: string[]): JobEvent {
  const f: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string
  if (f.e === 'state') {
    const flat = z.array(z.string()).parse(JSON.parse(f.m ?? '[]'))
    const raw: Record<string, string> = {}
    for (let i = 0; i + 1 < flat.length; i += 2) raw[flat[i] as string] = flat[i + 1] as string
    const meta = storedMetaSchema.parse(raw)
    const data = summarize(meta, Number(eventId.split('-')[0]))
    return { id: eventId, event: 'state', data, final: FINAL_JOB_STATES.has(data.state) }
  }
  const result = storedResultSchema.parse(JSON.parse(f.r ?? 'null'))
  return { id: eventId, event: 'result', data: itemFromStored(jobId, Number(f.i), f.u ?? '', result), final: false }
}

function summarize (meta: StoredMeta, now: number): JobSummary {
  const final = meta.finishedAt !== null
  const finishedCount = meta.succeeded + meta.failed + meta.cancelled
  return {
    id: meta.id,
    state: meta.state,
    createdAt: iso(meta.createdAt),
    startedAt: meta.startedAt === null ? null : iso(meta.startedAt),
    finishedAt: meta.finishedAt === null ? null : iso(meta.finishedAt),
    expiresAt: iso(meta.expiresAt),
    options: meta.options,
    total: meta.total,
    counts: {
      pending: Math.max(0, meta.total - finishedCount - meta.running),
      running: final ? 0 : meta.running,
      succeeded: meta.succeeded,
      failed: meta.failed,
      cancelled: meta.cancelled
    },
    bytes: meta.bytes,
    durationMs: meta.startedAt === null ? null : Math.max(0, (meta.finishedAt ?? now) - meta.startedAt),
    callback: meta.callbackUrl
      ? { url: meta.callbackUrl, state: meta.cbState ?? 'pending', attempts: meta.cbAttempts ?? 0, lastStatus: meta.cbLastStatus, lastError: meta.cbLastError }
      : null,
    error: meta.error
  }
}

function resultItem (meta: StoredMeta, index: number, url: string, raw: string | null, held: Set<number>): ResultItem {
  const base = { index, url, status: null, finalUrl: null, contentType: null, bytes: 0, durationMs: null, attempts: 0, error: null, contentUrl: null }
  if (raw !== null) return itemFromStored(meta.id, index, url, storedResultSchema.parse(JSON.parse(raw)))
  // URLs without a stored result take their state from the job: a cancelled or failed job ended
  // them all at once (finishScript) without writing one record per URL.
  if (meta.state === 'cancelled' || meta.state === 'failed') {
    return itemFromStored(meta.id, index, url, unfinishedResult(meta.state, meta.error))
  }
  return { ...base, state: held.has(index) ? 'running' : 'pending' }
}

/** A result as the API shows it, from the record a worker (or finishScript) stored. */
export function itemFromStored (jobId: string, index: number, url: string, r: StoredResult): ResultItem {
  return {
    index,
    url,
    state: r.state,
    status: r.status,
    finalUrl: r.finalUrl,
    contentType: r.contentType,
    bytes: r.bytes,
    durationMs: r.durationMs,
    attempts: r.attempts,
    error: r.error,
    contentUrl: r.hasContent ? `/jobs/${jobId}/results/${index}/content` : null
  }
}

/** The result of a URL that had none when its job was cancelled or failed. */
function unfinishedResult (state: 'cancelled' | 'failed', error: { message: string } | null): StoredResult {
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
    hasContent: false
  }
}

const iso = (ms: number) => new Date(ms).toISOString()
