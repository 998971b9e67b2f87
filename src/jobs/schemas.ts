import { z } from 'zod'
import { RESULT_ERROR_CODES } from './result-codes.js'

/**
 * The job's shapes at every boundary: the request a caller sends, the records read back from
 * Redis (untyped clear text until parsed here), and the documents the API answers with.
 */

const FINAL_STATES = ['completed', 'failed', 'cancelled'] as const
export const JOB_STATES = ['queued', 'running', ...FINAL_STATES] as const
/** The states a job never leaves. */
export const FINAL_JOB_STATES: ReadonlySet<string> = new Set(FINAL_STATES)
export const RESULT_STATES = ['pending', 'running', 'succeeded', 'failed', 'cancelled'] as const

export type JobState = typeof JOB_STATES[number]
export type ResultState = typeof RESULT_STATES[number]

// Headers the fetcher owns or that only make sense for one hop; a caller may not set them.
const FORBIDDEN_HEADERS = new Set([
  'host', 'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length', 'accept-encoding', 'expect'
])
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
// RFC 9110 field-value: visible ASCII, space and tab, obs-text; never CR, LF or NUL.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

export const MAX_URL_LENGTH = 2048

export const urlSchema = z.string().max(MAX_URL_LENGTH, `at most ${MAX_URL_LENGTH} characters`).superRefine((value, ctx) => {
  // The URL parser would drop them silently; the URL shown back would not be the one fetched.
  if (/^\s|\s$/.test(value)) {
    ctx.addIssue({ code: 'custom', message: 'leading or trailing white space' })
    return
  }
  let url: URL
  try {
    url = new URL(value)
  } catch {
    ctx.addIssue({ code: 'custom', message: 'not an absolute URL' })
    return
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: `scheme ${url.protocol.slice(0, -1)} is not allowed; use http or https` })
  }
})

export const headersSchema = z.record(z.string(), z.string().max(8192)).superRefine((headers, ctx) => {
  const names = Object.keys(headers)
  if (names.length > 50) ctx.addIssue({ code: 'custom', message: 'at most 50 headers' })
  for (const name of names) {
    if (!TOKEN.test(name)) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'not a valid header name' })
    } else if (FORBIDDEN_HEADERS.has(name.toLowerCase())) {
      ctx.addIssue({ code: 'custom', path: [name], message: `header ${name.toLowerCase()} is set by trawl or is hop-by-hop and may not be given` })
    } else if (!FIELD_VALUE.test(headers[name] ?? '')) {
      ctx.addIssue({ code: 'custom', path: [name], message: 'header value contains forbidden characters' })
    }
  }
}).transform((headers) => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])))

export const DEFAULT_OPTIONS = {
  concurrency: 5,
  timeoutMs: 30_000,
  retries: 2,
  maxBytes: 10_485_760,
  maxRedirects: 5,
  headers: {} as Record<string, string>,
  keepContent: true,
  robots: 'ignore' as 'obey' | 'ignore'
}

export const jobOptionsSchema = z.strictObject({
  concurrency: z.number().int().min(1).max(1000).default(DEFAULT_OPTIONS.concurrency),
  timeoutMs: z.number().int().min(100).max(300_000).default(DEFAULT_OPTIONS.timeoutMs),
  retries: z.number().int().min(0).max(10).default(DEFAULT_OPTIONS.retries),
  maxBytes: z.number().int().min(1).max(1_073_741_824).default(DEFAULT_OPTIONS.maxBytes),
  maxRedirects: z.number().int().min(0).max(20).default(DEFAULT_OPTIONS.maxRedirects),
  headers: headersSchema.default({}),
  keepContent: z.boolean().default(DEFAULT_OPTIONS.keepContent),
  /** Fetches in flight per host for this job, below HOST_CONCURRENCY (contract: Politeness). */
  hostConcurrency: z.number().int().min(1).max(1000).optional(),
  /** `obey`: check each host's robots.txt first; `ignore` (the default): do not fetch it. */
  robots: z.enum(['obey', 'ignore']).default(DEFAULT_OPTIONS.robots)
})
export type JobOptions = z.infer<typeof jobOptionsSchema>

/** Options as the job document shows them: every field, already checked (no transforms to encode). */
export const jobOptionsDocSchema = z.object({
  concurrency: z.number().int(),
  timeoutMs: z.number().int(),
  retries: z.number().int(),
  maxBytes: z.number().int(),
  maxRedirects: z.number().int(),
  headers: z.record(z.string(), z.string()),
  keepContent: z.boolean(),
  hostConcurrency: z.number().int().optional(),
  robots: z.enum(['obey', 'ignore'])
})

/** The body of `POST /jobs`. `maxUrls` comes from MAX_URLS_PER_JOB. */
export function submitBodySchema (maxUrls: number) {
  return z.strictObject({
    urls: z.array(urlSchema).min(1, 'at least one URL').max(maxUrls, `at most ${maxUrls} URLs`),
    options: jobOptionsSchema.default(jobOptionsSchema.parse({})),
    callbackUrl: urlSchema.optional()
  })
}
export type SubmitBody = z.infer<ReturnType<typeof submitBodySchema>>

export const resultErrorSchema = z.object({
  code: z.enum(RESULT_ERROR_CODES),
  message: z.string()
})

/** What a result says about its download, in the stored record and in the API's result item alike. */
const resultFields = {
  status: z.number().int().nullable(),
  finalUrl: z.string().nullable(),
  contentType: z.string().nullable(),
  bytes: z.number().int().min(0),
  durationMs: z.number().int().min(0).nullable(),
  attempts: z.number().int().min(0),
  error: resultErrorSchema.nullable()
}

/** Hex sha256 of a stored body (lower case). */
const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/)

/** A URL's final result as a worker stores it in Redis. */
export const storedResultSchema = z.object({
  state: z.enum(RESULT_STATES).exclude(['pending', 'running']),
  ...resultFields,
  hasContent: z.boolean(),
  /** The stored body's sha256, null when none was stored (and in results written before bodies left Redis). */
  sha256: sha256Schema.nullable().default(null)
})
export type StoredResult = z.infer<typeof storedResultSchema>

/** Why a pending URL waits: its host is full (`host`) or paused (`pause`, Retry-After or spacing). */
export const WAITING_FOR = ['host', 'pause'] as const
export type WaitingFor = typeof WAITING_FOR[number]

/**
 * A URL parked by its lane while its host cannot take it (job:{id}:parked, index -> JSON),
 * written by the lane and read back by the next lane that claims it and by the job document.
 */
export const parkedUrlSchema = z.object({
  waitingFor: z.enum(WAITING_FOR),
  host: z.string(),
  /** Real fetches made so far, the 429/503 answers that paused the host included. */
  attempts: z.number().int().min(0),
  /** Of those, the ones that spent the retry budget (every one but the pause answers). */
  spent: z.number().int().min(0),
  /** When the URL first met a pause answer (ms since the epoch); null if never. */
  pausedAt: z.number().nullable()
})
export type ParkedUrl = z.infer<typeof parkedUrlSchema>

export const resultItemSchema = z.object({
  index: z.number().int().min(0),
  url: z.string(),
  state: z.enum(RESULT_STATES),
  ...resultFields,
  /** Hex sha256 of the stored body (its ETag), null when the result has none. */
  sha256: sha256Schema.nullable(),
  contentUrl: z.string().nullable(),
  /** While `pending`: what the URL waits for; null otherwise. */
  waitingFor: z.enum(WAITING_FOR).nullable()
})
export type ResultItem = z.infer<typeof resultItemSchema>

export const countsSchema = z.object({
  pending: z.number().int().min(0),
  running: z.number().int().min(0),
  succeeded: z.number().int().min(0),
  failed: z.number().int().min(0),
  cancelled: z.number().int().min(0)
})

export const callbackStatusSchema = z.object({
  url: z.string(),
  state: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int().min(0),
  lastStatus: z.number().int().nullable(),
  lastError: z.string().nullable()
})

const isoDate = z.iso.datetime()

export const jobSummarySchema = z.object({
  id: z.string(),
  state: z.enum(JOB_STATES),
  createdAt: isoDate,
  startedAt: isoDate.nullable(),
  finishedAt: isoDate.nullable(),
  expiresAt: isoDate,
  options: jobOptionsDocSchema,
  total: z.number().int().min(1),
  counts: countsSchema,
  bytes: z.number().int().min(0),
  durationMs: z.number().int().min(0).nullable(),
  callback: callbackStatusSchema.nullable(),
  error: resultErrorSchema.nullable()
})
export type JobSummary = z.infer<typeof jobSummarySchema>

export const pageSchema = z.object({
  offset: z.number().int().min(0),
  limit: z.number().int().min(1),
  next: z.string().nullable()
})

export const jobDocumentSchema = jobSummarySchema.extend({
  results: z.array(resultItemSchema).optional(),
  page: pageSchema.optional()
})
export type JobDocument = z.infer<typeof jobDocumentSchema>

/** A job's id: `j_` and a ULID (Crockford base 32, upper case). */
export const JOB_ID_PATTERN = /^j_[0-9A-HJKMNP-TV-Z]{26}$/

/** What BullMQ carries for one lane of a job: ids only, no URLs and no secrets. */
export const laneDataSchema = z.object({
  jobId: z.string().regex(JOB_ID_PATTERN),
  lane: z.number().int().min(0)
})
export type LaneData = z.infer<typeof laneDataSchema>

/** What BullMQ carries for a job's callback delivery. */
export const callbackDataSchema = z.object({
  jobId: z.string().regex(JOB_ID_PATTERN)
})
export type CallbackData = z.infer<typeof callbackDataSchema>
