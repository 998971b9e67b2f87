import { z } from 'zod'
import { encodeCursor, LIST_LIMIT, type JobListPage, type ListQuery } from './listing.js'
import { jobSummarySchema, type JobDocument, type JobSummary, type ResultItem, type StoredResult, type WaitingFor } from './schemas.js'
import { unfinishedResult, type JobRecord, type JobStore, type ReadOptions, type StoredMeta } from './store.js'

/**
 * The API's documents, rendered from the store's records, and the one place that builds the
 * URLs of the job routes (jobs/routes.ts, events/routes.ts): renaming a route changes this file,
 * never the store.
 */

/** `GET /jobs/:id`, the job's own URL (the Location of a submission). */
export const jobUrl = (id: string): string => `/jobs/${id}`

/** The next page of a job's results. */
export const jobPageUrl = (id: string, offset: number, limit: number): string => `${jobUrl(id)}?offset=${offset}&limit=${limit}`

/** `GET /jobs/:id/results/:index/content`, the stored body of one result. */
export const contentUrl = (id: string, index: number): string => `${jobUrl(id)}/results/${index}/content`

/**
 * `GET /jobs` from the job after `cursor`, with the same filter and limit (the limit only when
 * it is not the default). Null `cursor`: the first page.
 */
export function jobListUrl (query: Pick<ListQuery, 'states' | 'limit'>, cursor: string | null): string {
  const params = new URLSearchParams()
  if (cursor !== null) params.append('cursor', cursor)
  if (query.limit !== LIST_LIMIT.default) params.append('limit', String(query.limit))
  for (const state of query.states ?? []) params.append('state', state)
  const search = params.toString()
  return search === '' ? '/jobs' : `/jobs?${search}`
}

/** `GET /jobs`: the tenant's jobs without their results, and the URL of the next page. */
export const jobListSchema = z.object({
  jobs: z.array(jobSummarySchema),
  page: z.object({ next: z.string().nullable() })
})
export type JobList = z.infer<typeof jobListSchema>

/** The list document of one page of the store's list. */
export function jobListDocument (page: JobListPage, query: ListQuery, now: number): JobList {
  return {
    jobs: page.jobs.map((meta) => summarize(meta, now)),
    page: { next: page.next === null ? null : jobListUrl(query, encodeCursor(page.next)) }
  }
}

/** Reads a job and renders it; null when the store has no such job for `tenant`. */
export async function readJob (store: Pick<JobStore, 'readRecord'>, id: string, ro: ReadOptions, tenant?: string): Promise<JobDocument | null> {
  const record = await store.readRecord(id, ro, tenant)
  return record === null ? null : jobDocument(record, Date.now())
}

/** The job document of a record: its summary and, if the record has one, its page of results. */
export function jobDocument (record: JobRecord, now: number): JobDocument {
  const { meta, page } = record
  const doc: JobDocument = summarize(meta, now)
  if (page === null) return doc
  doc.results = page.urls.map((url, i) => resultItem(meta, page.offset + i, url, page.results[i] ?? null, page.held, page.waiting))
  const nextOffset = page.offset + page.limit
  doc.page = {
    offset: page.offset,
    limit: page.limit,
    next: nextOffset < meta.total ? jobPageUrl(meta.id, nextOffset, page.limit) : null
  }
  return doc
}

/** The job's summary as the API shows it; `now` (ms) measures a running job's duration. */
export function summarize (meta: StoredMeta, now: number): JobSummary {
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

/** One URL of a page: its stored result, or what the job's state says about it. */
export function resultItem (meta: StoredMeta, index: number, url: string, stored: StoredResult | null, held: ReadonlySet<number>,
  waiting: ReadonlyMap<number, WaitingFor> = new Map()): ResultItem {
  if (stored !== null) return itemFromStored(meta.id, index, url, stored)
  // URLs without a stored result take their state from the job: a cancelled or failed job ended
  // them all at once (finish.lua) without writing one record per URL.
  if (meta.state === 'cancelled' || meta.state === 'failed') {
    return itemFromStored(meta.id, index, url, unfinishedResult(meta.state, meta.error))
  }
  const base = { index, url, status: null, finalUrl: null, contentType: null, bytes: 0, durationMs: null, attempts: 0, error: null, sha256: null, contentUrl: null }
  // A claimed parked URL keeps its parked record until its result: held says it runs now.
  if (held.has(index)) return { ...base, state: 'running', waitingFor: null }
  return { ...base, state: 'pending', waitingFor: waiting.get(index) ?? null }
}

/** A result as the API shows it, from the record a worker (or finish.lua) stored. */
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
    sha256: r.hasContent ? r.sha256 : null,
    contentUrl: r.hasContent ? contentUrl(jobId, index) : null,
    waitingFor: null
  }
}

const iso = (ms: number) => new Date(ms).toISOString()
