import type { Redis } from 'ioredis'
import type { StreamEntry } from '../events/hub.js'
import { loadScripts, runScript, type ScriptKeys } from '../redis/scripts.js'
import { OPEN_TENANT } from '../tenants/tenant.js'
import { finishedChannel, jobKeys, keyList, tenantPendingKey, type JobKeys } from './keys.js'
import { indexJob, listJobs, unindexJob, type ListingDeps } from './listing.js'
import { stepBatcher, type StepCall, type StepReplyRaw } from './step-batcher.js'
import { jobOptionsSchema, parkedUrlSchema, storedResultSchema, type JobOptions, type JobState, type ParkedUrl, type StoredResult } from './schemas.js'
import {
  storedMetaSchema, unfinishedResult,
  type ClaimHints, type JobRecord, type JobStore, type LaneReport, type NewJob, type ReadOptions, type StepReply
} from './store.js'

export interface JobStoreOptions {
  /** REDIS_PREFIX: the first part of every key. */
  prefix: string
  /** JOB_TTL_SECONDS: how long a job is kept once finished (or idle), in seconds. */
  ttlSeconds: number
}

/** What every method of the store works with: the connection and the names derived from the options. */
interface Ctx {
  redis: Redis
  ttlMs: number
  channel: string
  keysOf(id: string): JobKeys
  /** The KEYS of step.lua and finish.lua for a job of `tenant`. */
  scriptKeys(id: string, tenant: string): ScriptKeys<'trawlStep'>
  batchedStep(call: StepCall): Promise<StepReplyRaw>
  /** What the tenants' job indexes (listing.ts) work with. */
  listing: ListingDeps
}

/** Jobs whose step KEYS are kept built; past it the cache starts again (jobs come and go). */
const STEP_KEYS_CACHED = 1024

/**
 * step.lua's KEYS for a job, built once per job rather than once per step (a lane steps once per
 * URL: nine strings each time). The same object for every step of a job also lets the step
 * batcher group a flush's steps by job without building a key.
 */
function stepKeysCache (prefix: string): Ctx['scriptKeys'] {
  const cached = new Map<string, { tenant: string, keys: ScriptKeys<'trawlStep'> }>()
  return (id, tenant) => {
    const hit = cached.get(id)
    if (hit !== undefined && hit.tenant === tenant) return hit.keys
    if (cached.size >= STEP_KEYS_CACHED) cached.clear()
    const keys = { ...jobKeys(prefix, id), pending: tenantPendingKey(prefix, tenant) }
    cached.set(id, { tenant, keys })
    return keys
  }
}

/** The job store on one Redis connection; see JobStore for what each method reads and changes. */
export function createJobStore (redis: Redis, opts: JobStoreOptions): JobStore {
  loadScripts(redis)
  const keysOf = (id: string) => jobKeys(opts.prefix, id)
  const ctx: Ctx = {
    redis,
    ttlMs: opts.ttlSeconds * 1000,
    channel: finishedChannel(opts.prefix),
    keysOf,
    scriptKeys: stepKeysCache(opts.prefix),
    batchedStep: stepBatcher(redis),
    listing: { redis, prefix: opts.prefix, ttlMs: opts.ttlSeconds * 1000, metaKey: (id) => keysOf(id).meta }
  }
  return {
    channel: ctx.channel,
    keysOf,
    create: (job, ro) => create(ctx, job, ro),
    list: (tenant, query) => listJobs(ctx.listing, tenant, query),
    readRecord: (id, ro, tenant) => readRecord(ctx, id, ro, tenant),
    finish: (id, state, error, tenant, now) => finish(ctx, id, state, error, tenant, now),
    step: (id, tenant, lane, finished, claim, now) => step(ctx, id, tenant, lane, finished, claim, now),
    laneContext: (id) => laneContext(ctx, id),
    result: (id, index, tenant) => result(ctx, id, index, tenant),
    purge: async (id) => { await redis.del(...keyList(keysOf(id))) },
    events: (id, after, count) => events(ctx, id, after, count),
    states: (ids) => states(ctx, ids)
  }
}

async function create (ctx: Ctx, job: NewJob, ro?: ReadOptions): Promise<JobRecord> {
  const k = ctx.keysOf(job.id)
  const meta: Record<string, string | number> = {
    id: job.id,
    tenant: job.tenant,
    state: 'queued',
    createdAt: job.now,
    expiresAt: job.now + ctx.ttlMs,
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
  const tx = ctx.redis.multi()
  tx.hset(k.meta, meta)
  tx.xadd(k.events, '*', 'e', 'state', 'm', JSON.stringify(Object.entries(meta).flat().map(String)))
  // Bounded argument lists keep each command small for Redis' argument buffer.
  for (let i = 0; i < job.urls.length; i += 1000) tx.rpush(k.urls, ...job.urls.slice(i, i + 1000))
  tx.pexpire(k.meta, ctx.ttlMs)
  tx.pexpire(k.urls, ctx.ttlMs)
  tx.pexpire(k.events, ctx.ttlMs)
  // Both MULTIs go out together (one round trip, not two); the index's is never inside the
  // job's, which a Redis Cluster would refuse (store.ts).
  const [created, indexed] = await Promise.allSettled([tx.exec().then(firstError), indexJob(ctx.listing, job.tenant, job.id, job.now)])
  const failure = created.status === 'rejected' ? created.reason : created.value ?? (indexed.status === 'rejected' ? indexed.reason : null)
  if (failure !== null) {
    await ctx.redis.del(...keyList(k)).catch(() => {})
    // Without this, the entry would only be left out of listings (as an expired job's is) until trimmed.
    if (indexed.status === 'fulfilled') await unindexJob(ctx.listing, job.tenant, job.id).catch(() => {})
    throw failure
  }
  return createdRecord(meta, job.urls, ro)
}

/** The record of a job just written from `meta` (its hash as HSET took it) and `urls`, as readRecord would read it. */
function createdRecord (meta: Record<string, string | number>, urls: readonly string[], ro: ReadOptions | undefined): JobRecord {
  const parsed = storedMetaSchema.parse(Object.fromEntries(Object.entries(meta).map(([field, value]) => [field, String(value)])))
  if (ro === undefined || !ro.withResults) return { meta: parsed, page: null }
  const page = urls.slice(ro.offset, ro.offset + ro.limit)
  return { meta: parsed, page: { offset: ro.offset, limit: ro.limit, urls: page, results: page.map(() => null), held: new Set(), waiting: new Map() } }
}

/** A transaction's first error: null replies (aborted), else a command refused inside it; null when it all ran. */
function firstError (replies: Array<[Error | null, unknown]> | null): Error | null {
  if (replies === null) return new Error('transaction aborted')
  return replies.find(([err]) => err !== null)?.[0] ?? null
}

async function readRecord (ctx: Ctx, id: string, ro: ReadOptions, tenant?: string): Promise<JobRecord | null> {
  const k = ctx.keysOf(id)
  const tx = ctx.redis.multi().hgetall(k.meta)
  const indexes: number[] = []
  if (ro.withResults) {
    for (let n = 0; n < ro.limit; n++) indexes.push(ro.offset + n)
    tx.lrange(k.urls, ro.offset, ro.offset + ro.limit - 1).hmget(k.results, ...indexes.map(String)).hvals(k.held).hmget(k.parked, ...indexes.map(String))
  }
  const replies = await tx.exec()
  if (replies === null) throw new Error('transaction aborted')
  for (const [err] of replies) if (err) throw err
  const rawMeta = replies[0]?.[1] as Record<string, string>
  if (!rawMeta || Object.keys(rawMeta).length === 0) return null
  const meta = storedMetaSchema.parse(rawMeta)
  if (tenant !== undefined && meta.tenant !== tenant) return null
  if (!ro.withResults) return { meta, page: null }
  const urls = replies[1]?.[1] as string[]
  const stored = replies[2]?.[1] as Array<string | null>
  const results = urls.map((_, i) => {
    const raw = stored[i] ?? null
    return raw === null ? null : storedResultSchema.parse(JSON.parse(raw))
  })
  const held = new Set((replies[3]?.[1] as string[]).map(Number))
  const waiting = new Map<number, ParkedUrl['waitingFor']>()
  ;(replies[4]?.[1] as Array<string | null>).forEach((raw, i) => {
    if (raw !== null && i < urls.length) waiting.set(ro.offset + i, parkedUrlSchema.parse(JSON.parse(raw)).waitingFor)
  })
  return { meta, page: { offset: ro.offset, limit: ro.limit, urls, results, held, waiting } }
}

async function finish (ctx: Ctx, id: string, state: 'cancelled' | 'failed', error: { code: string, message: string } | null, tenant?: string, now = Date.now()): Promise<JobState | 'missing'> {
  const owner = tenant ?? await ctx.redis.hget(ctx.keysOf(id).meta, 'tenant') ?? OPEN_TENANT
  const before = await runScript(ctx.redis, 'trawlFinish', ctx.scriptKeys(id, owner), {
    state,
    error: error ? JSON.stringify(error) : '',
    now,
    ttl: ctx.ttlMs,
    channel: ctx.channel,
    result: JSON.stringify(unfinishedResult(state, error)),
    tenant: tenant ?? ''
  })
  return before as JobState | 'missing'
}

async function step (ctx: Ctx, id: string, tenant: string, lane: number, report: LaneReport | null, claim: boolean | ClaimHints, now = Date.now()): Promise<StepReply> {
  const finished = report !== null && 'result' in report ? report : null
  const parked = report !== null && 'park' in report ? report.park : null
  const hints = typeof claim === 'object' ? claim : {}
  const reply = await ctx.batchedStep({
    keys: ctx.scriptKeys(id, tenant),
    args: {
      lane,
      index: report?.index ?? -1,
      result: finished ? JSON.stringify(finished.result) : '',
      outcome: finished?.result.state === 'succeeded' ? 'succeeded' : 'failed',
      bytes: finished?.result.bytes ?? 0,
      now,
      ttl: ctx.ttlMs,
      channel: ctx.channel,
      claim: claim === false ? '0' : '1',
      park: parked ? JSON.stringify(parked) : '',
      host: parked?.host ?? '',
      skip: hints.skip?.join(' ') ?? '',
      want: hints.want ?? '',
      paused: hints.paused?.join(' ') ?? ''
    }
  })
  const code = Number(reply[0])
  // The cursor's next URLs were on skipped hosts and are parked now: claim again, reporting nothing.
  if (code === 4) return await step(ctx, id, tenant, lane, null, claim, now)
  if (code === 1) {
    const info = reply[3]
    return { kind: 'fetch', index: Number(reply[1]), url: String(reply[2]), parked: info === undefined ? null : parkedUrlSchema.parse(JSON.parse(String(info))) }
  }
  if (code === 0) return { kind: 'idle' }
  if (code === 3) return { kind: 'blocked', hosts: reply.slice(1).map(String) }
  if (code === -3) return { kind: 'gone' }
  return code === 2 ? { kind: 'over', completed: true } : { kind: 'over' }
}

async function laneContext (ctx: Ctx, id: string): Promise<{ options: JobOptions, tenant: string } | null> {
  const [options, tenant] = await ctx.redis.hmget(ctx.keysOf(id).meta, 'options', 'tenant')
  return options == null ? null : { options: jobOptionsSchema.parse(JSON.parse(options)), tenant: tenant ?? OPEN_TENANT }
}

async function result (ctx: Ctx, id: string, index: number, tenant?: string): Promise<StoredResult | null | 'no-job'> {
  const k = ctx.keysOf(id)
  const [[e1, owner], [e2, raw]] = await ctx.redis.multi()
    .hget(k.meta, 'tenant').hget(k.results, String(index)).exec() as Array<[Error | null, string | null]> as [[Error | null, string | null], [Error | null, string | null]]
  if (e1 ?? e2) throw (e1 ?? e2)
  if (owner === null || (tenant !== undefined && owner !== tenant)) return 'no-job'
  return raw === null ? null : storedResultSchema.parse(JSON.parse(raw))
}

async function events (ctx: Ctx, id: string, after: string, count = 500): Promise<StreamEntry[]> {
  return await ctx.redis.xrange(ctx.keysOf(id).events, `(${after}`, '+', 'COUNT', count) as StreamEntry[]
}

async function states (ctx: Ctx, ids: string[]): Promise<Array<string | null>> {
  if (ids.length === 0) return []
  const p = ctx.redis.pipeline()
  for (const id of ids) p.hget(ctx.keysOf(id).meta, 'state')
  const replies = await p.exec()
  return (replies ?? []).map(([err, v]) => (err ? null : (v as string | null)))
}
