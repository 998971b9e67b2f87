import type { Redis } from 'ioredis'
import { tenantJobsKey } from './keys.js'
import { JOB_ID_PATTERN, type JobState } from './schemas.js'
import { storedMetaSchema, type StoredMeta } from './store.js'

/**
 * `GET /jobs` in Redis: each tenant's jobs in a sorted set of ids scored by createdAt
 * (keys.ts tenantJobsKey), written when a job is created and read newest first. The index is
 * the only way to the list: there is no SCAN over the keyspace. Entries whose job record has
 * expired are skipped and removed as the list is read; the index itself expires when the tenant
 * has created no job for twice JOB_TTL_SECONDS (a job lives past its creation by its run time
 * plus the TTL, so once would drop jobs that ran long; twice is what Idempotency-Keys get too).
 */

/** Where a page ends: the last job it showed. Pages go on strictly after it, by (createdAt, id). */
export interface ListCursor {
  /** The job's createdAt, ms since the epoch (its score in the index). */
  createdAt: number
  id: string
}

export interface ListQuery {
  /** Only jobs in one of these states; null lists every state. */
  states: readonly JobState[] | null
  /** Jobs in the page at most. */
  limit: number
  /** Start after this job (the previous page's `next`); null starts at the newest. */
  after: ListCursor | null
}

export interface JobListPage {
  /** Newest first. */
  jobs: StoredMeta[]
  /** Where the next page starts; null when no job is left to show. */
  next: ListCursor | null
}

/** `GET /jobs`: `limit` when the query has none, and the most it takes. */
export const LIST_LIMIT = { default: 50, max: 200 } as const

/**
 * Index entries looked at for one page at most. A filter that matches few jobs may end a page
 * short (even empty) with a `next` to go on from; only a null `next` says the list is over.
 */
const SCAN_BUDGET = 2000
/** Candidates read at once when a state filter may reject many of them. */
const FILTERED_BATCH = 200

export interface ListingDeps {
  redis: Redis
  prefix: string
  /** JOB_TTL_SECONDS in ms. */
  ttlMs: number
  metaKey(id: string): string
}

/**
 * Adds a new job to its tenant's index, drops entries created more than twice the TTL ago and
 * moves the index's expiry to twice the TTL from now. One MULTI on the one key.
 */
export async function indexJob (deps: ListingDeps, tenant: string, id: string, createdAt: number): Promise<void> {
  const key = tenantJobsKey(deps.prefix, tenant)
  const keep = 2 * deps.ttlMs
  const replies = await deps.redis.multi()
    .zadd(key, createdAt, id)
    .zremrangebyscore(key, '-inf', `(${createdAt - keep}`)
    .pexpire(key, keep)
    .exec()
  throwFirstError(replies)
}

/** Takes a job out of its tenant's index (a creation that failed after the index took it). */
export async function unindexJob (deps: ListingDeps, tenant: string, id: string): Promise<void> {
  await deps.redis.zrem(tenantJobsKey(deps.prefix, tenant), id)
}

/** One page of the tenant's jobs, newest first; see JobStore.list. */
export async function listJobs (deps: ListingDeps, tenant: string, q: ListQuery): Promise<JobListPage> {
  const key = tenantJobsKey(deps.prefix, tenant)
  const wanted = q.states === null ? null : new Set<string>(q.states)
  const found: StoredMeta[] = []
  let at = q.after
  let scanned = 0
  // One job past the page tells whether a next page exists.
  while (found.length <= q.limit) {
    if (scanned >= SCAN_BUDGET) return { jobs: found, next: at }
    const size = Math.min(wanted === null ? q.limit + 1 - found.length : FILTERED_BATCH, SCAN_BUDGET - scanned)
    const batch = await candidates(deps.redis, key, at, size)
    if (batch.length === 0) return { jobs: found, next: null }
    scanned += batch.length
    at = batch[batch.length - 1] ?? at
    for (const meta of await matching(deps, key, tenant, batch, wanted)) {
      found.push(meta)
      if (found.length > q.limit) break
    }
  }
  const last = found[q.limit - 1]
  return { jobs: found.slice(0, q.limit), next: last === undefined ? null : { createdAt: last.createdAt, id: last.id } }
}

/** Up to `count` index entries strictly after `after` (newest first when null). */
async function candidates (redis: Redis, key: string, after: ListCursor | null, count: number): Promise<ListCursor[]> {
  if (after === null) return pairs(await redis.zrange(key, '+inf', '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, count, 'WITHSCORES'))
  // Jobs created in the same millisecond as the cursor's come after it when their id is lower.
  const [[e1, same], [e2, older]] = await redis.multi()
    .zrange(key, after.createdAt, after.createdAt, 'BYSCORE', 'WITHSCORES')
    .zrange(key, `(${after.createdAt}`, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, count, 'WITHSCORES')
    .exec() as Array<[Error | null, string[]]> as [[Error | null, string[]], [Error | null, string[]]]
  if (e1 ?? e2) throw (e1 ?? e2)
  const tied = pairs(same).filter((c) => c.id < after.id).reverse()
  return [...tied, ...pairs(older)].slice(0, count)
}

/**
 * The records of the candidates that still exist and are in a wanted state, in order: their
 * states first (one pipelined HMGET each), then the whole record of those that match. Entries
 * whose record is gone are removed from the index.
 */
async function matching (deps: ListingDeps, key: string, tenant: string, batch: ListCursor[], wanted: ReadonlySet<string> | null): Promise<StoredMeta[]> {
  const states = await pipelined(deps.redis, batch, (p, c) => p.hmget(deps.metaKey(c.id), 'state')) as Array<[string | null]>
  const gone = batch.filter((_, i) => states[i]?.[0] == null).map((c) => c.id)
  if (gone.length > 0) await deps.redis.zrem(key, ...gone)
  const picked = batch.filter((_, i) => {
    const state = states[i]?.[0]
    return state != null && (wanted === null || wanted.has(state))
  })
  const raw = await pipelined(deps.redis, picked, (p, c) => p.hgetall(deps.metaKey(c.id))) as Array<Record<string, string>>
  const metas: StoredMeta[] = []
  for (const r of raw) {
    // Expired, or moved to another state, since its state was read: left out.
    if (Object.keys(r).length === 0) continue
    const meta = storedMetaSchema.parse(r)
    if (meta.tenant === tenant && (wanted === null || wanted.has(meta.state))) metas.push(meta)
  }
  return metas
}

type Pipeline = ReturnType<Redis['pipeline']>

async function pipelined<T> (redis: Redis, items: T[], add: (p: Pipeline, item: T) => void): Promise<unknown[]> {
  if (items.length === 0) return []
  const p = redis.pipeline()
  for (const item of items) add(p, item)
  const replies = await p.exec()
  throwFirstError(replies)
  return (replies ?? []).map(([, v]) => v)
}

function throwFirstError (replies: Array<[Error | null, unknown]> | null): void {
  if (replies === null) throw new Error('transaction aborted')
  for (const [err] of replies) if (err) throw err
}

/** `[member, score, member, score, ...]` (WITHSCORES) as cursors. */
function pairs (flat: string[]): ListCursor[] {
  const out: ListCursor[] = []
  for (let i = 0; i + 1 < flat.length; i += 2) out.push({ id: flat[i] as string, createdAt: Number(flat[i + 1]) })
  return out
}

/** The opaque form of a cursor in `page.next`: base64url of `<createdAt>.<id>`. */
export function encodeCursor (c: ListCursor): string {
  return Buffer.from(`${c.createdAt}.${c.id}`).toString('base64url')
}

/** A cursor from `page.next`, or null when the text is not one this service made. */
export function decodeCursor (text: string): ListCursor | null {
  if (!/^[A-Za-z0-9_-]{1,120}$/.test(text)) return null
  const m = /^(\d{1,15})\.(j_[0-9A-Z]{26})$/.exec(Buffer.from(text, 'base64url').toString('latin1'))
  if (m === null || !JOB_ID_PATTERN.test(m[2] ?? '')) return null
  return { createdAt: Number(m[1]), id: m[2] as string }
}
