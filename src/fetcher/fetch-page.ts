import { setTimeout as delay } from 'node:timers/promises'
import { request } from 'undici'
import type { Dispatcher } from 'undici'
import type { ResultErrorCode } from '../jobs/result-codes.js'
import { classify } from './classify.js'
import { ACCEPT_ENCODING } from './codings.js'
import { readBody, type BodySink } from './decode.js'
import { isHttpUrl, isRedirectStatus, nextHop } from './redirects.js'
import { isRetryableStatus, parseRetryAfter, retryWaitMs } from './retry.js'

/**
 * Downloading one URL: the attempt loop (retries per retry.ts) around one attempt, which follows
 * redirects (redirects.ts), reads the body (decode.ts) and sorts failures (classify.ts) under
 * one deadline.
 */

/** One URL's download settings: the contract's job `options`, less `concurrency`. */
export interface FetchOptions {
  /** Deadline of one attempt in milliseconds: every redirect hop, the headers and the whole body. */
  timeoutMs: number
  /** Cap on the decoded body in bytes; past it the download is aborted with `TOO_LARGE`. */
  maxBytes: number
  /** Redirects followed; one more ends in `TOO_MANY_REDIRECTS`. */
  maxRedirects: number
  /**
   * Extra request headers (any case). `accept-encoding` is always trawl's own, since only a
   * coding trawl can decode lets it count and store decoded bytes.
   */
  headers: Record<string, string>
  /** Extra attempts after a retryable failure (network fault, timeout, 408, 429, 5xx). */
  retries: number
  /**
   * Hand a 429 or 503 answer back at once instead of retrying it here: the result carries
   * `pause`, and the caller pauses the host (src/hosts) and fetches the URL again later
   * without spending a retry. @defaultValue false (429 and 503 are retried like 5xx)
   */
  hostPauses?: boolean
}

export interface PageResult {
  /** A 2xx answer whose body was read whole. */
  ok: boolean
  /** The last HTTP status seen (a redirect's too), null when no answer came. */
  status: number | null
  /** The URL of the last hop requested, null when none was. */
  finalUrl: string | null
  contentType: string | null
  /** Decoded body bytes read by the last attempt (for a failure, as far as it got). */
  bytes: number
  /** Hex sha256 of the stored body: only when `ok` and the body went into `hooks.sink`. */
  sha256: string | null
  error: { code: ResultErrorCode, message: string } | null
  /** Attempts made; 0 when the signal was aborted before the first. */
  attempts: number
  /** Milliseconds from the call to the result, backoff waits included. */
  durationMs: number
  /**
   * With `hostPauses`: the last answer was a 429 or 503, handed back unretried; its
   * Retry-After in ms (uncapped) when it had a readable one.
   */
  pause?: { retryAfterMs?: number }
}

export interface FetchHooks {
  /** Waits `ms` milliseconds, or rejects as soon as `signal` aborts. Tests replace it. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
  /** A number in [0, 1) for the backoff's jitter. @defaultValue Math.random */
  random?: () => number
  /**
   * Where a 2xx body goes as it is decoded (the content store, for `keepContent`), under the
   * attempt's deadline and signal; each attempt streams into it anew. Without one the body is
   * counted and dropped. A sink's own failure ends the URL `STORAGE_FAILED`, not retried.
   */
  sink?: BodySink
}

interface AttemptResult extends Omit<PageResult, 'attempts' | 'durationMs'> {
  retryable: boolean
  /** Milliseconds the server asked to wait (Retry-After), if it did. */
  retryAfterMs?: number
  /** A 429 or 503: an answer about the host rather than the URL. */
  hostPause?: boolean
}

interface Progress {
  status: number | null
  finalUrl: string | null
  contentType: string | null
  bytes: number
}

class DeadlineError extends Error {
  readonly code = 'TIMEOUT'
}

function failure (p: Progress, code: ResultErrorCode, message: string, retryable = false): AttemptResult {
  const { status, finalUrl, contentType, bytes } = p
  return { ok: false, status, finalUrl, contentType, bytes, sha256: null, error: { code, message }, retryable }
}

const defaultSleep = async (ms: number, signal: AbortSignal): Promise<void> => {
  await delay(ms, undefined, { signal })
}

/**
 * Downloads one URL with up to `opts.retries` extra attempts. Never throws: every outcome,
 * including the caller's abort (`CANCELLED`; the caller tells cancel from shutdown by
 * `signal.reason`), is a PageResult.
 */
export async function fetchPage (
  dispatcher: Dispatcher,
  url: string,
  opts: FetchOptions,
  signal: AbortSignal,
  hooks: FetchHooks = {}
): Promise<PageResult> {
  const started = performance.now()
  const sleep = hooks.sleep ?? defaultSleep
  const random = hooks.random ?? Math.random
  // Field by field rather than a rest spread of `r`: this runs once per URL.
  const done = (r: AttemptResult, attempts: number): PageResult => ({
    ok: r.ok,
    status: r.status,
    finalUrl: r.finalUrl,
    contentType: r.contentType,
    bytes: r.bytes,
    sha256: r.sha256,
    error: r.error,
    attempts,
    durationMs: Math.round(performance.now() - started)
  })
  if (signal.aborted) return done(failure(fresh(), 'CANCELLED', 'cancelled before the download started'), 0)

  for (let attempts = 1; ; attempts++) {
    const result = await attemptOnce(dispatcher, url, opts, signal, hooks.sink ?? null)
    if (opts.hostPauses === true && result.hostPause === true) {
      return { ...done(result, attempts), pause: result.retryAfterMs === undefined ? {} : { retryAfterMs: result.retryAfterMs } }
    }
    if (result.ok || !result.retryable || attempts > opts.retries) return done(result, attempts)
    const waitMs = retryWaitMs(attempts, result.retryAfterMs, random)
    if (waitMs === null) return done(result, attempts)
    try {
      await sleep(waitMs, signal)
    } catch {
      return done(failure(result, 'CANCELLED', 'cancelled while waiting to retry'), attempts)
    }
    if (signal.aborted) return done(failure(result, 'CANCELLED', 'cancelled while waiting to retry'), attempts)
  }
}

const fresh = (): Progress => ({ status: null, finalUrl: null, contentType: null, bytes: 0 })

/** One attempt: every redirect hop, headers and body, under one deadline. */
async function attemptOnce (dispatcher: Dispatcher, startUrl: string, opts: FetchOptions, signal: AbortSignal, sink: BodySink | null): Promise<AttemptResult> {
  const p = fresh()
  let url: URL
  try {
    url = new URL(startUrl)
  } catch {
    return failure(p, 'INTERNAL', `not an absolute URL: ${startUrl}`)
  }
  if (!isHttpUrl(url)) return failure(p, 'INTERNAL', `not an http or https URL: ${startUrl}`)

  // One controller for the caller's abort and the deadline. Linked by hand rather than with
  // AbortSignal.any so that the listener on the caller's long-lived signal is surely removed.
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(new DeadlineError(`no complete answer within ${opts.timeoutMs} ms`)), opts.timeoutMs)
  const onAbort = (): void => ac.abort(signal.reason)
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    return await followHops(dispatcher, url, opts, p, ac.signal, sink)
  } catch (err) {
    // The caller's abort wins over the deadline: a cancelled job reports CANCELLED even if the
    // deadline fired in the same instant.
    if (signal.aborted) return failure(p, 'CANCELLED', 'the download was cancelled')
    if (ac.signal.aborted) return failure(p, 'TIMEOUT', `no complete answer within ${opts.timeoutMs} ms`, true)
    const c = classify(err)
    return failure(p, c.code, c.message, c.retryable)
  } finally {
    clearTimeout(timer)
    signal.removeEventListener('abort', onAbort)
  }
}

/** Requests `url` and each redirect target in turn, recording progress in `p`, until an answer that is not followed. */
async function followHops (dispatcher: Dispatcher, start: URL, opts: FetchOptions, p: Progress, signal: AbortSignal, sink: BodySink | null): Promise<AttemptResult> {
  let url = start
  let headers = requestHeaders(opts.headers)
  for (let redirects = 0; ; redirects++) {
    p.finalUrl = url.href
    p.contentType = null
    const res = await request(url, { dispatcher, method: 'GET', headers, signal })
    p.status = res.statusCode
    p.contentType = headerValue(res.headers['content-type'])
    const location = headerValue(res.headers.location)
    if (location !== null && isRedirectStatus(res.statusCode)) {
      await discard(res.body, signal)
      const hop = nextHop(url, location, headers, redirects, opts.maxRedirects)
      if (!hop.ok) return failure(p, hop.code, hop.message)
      url = hop.url
      headers = hop.headers
      continue
    }
    if (res.statusCode < 200 || res.statusCode > 299) return await statusFailure(res, p, signal)
    const framing = { contentEncoding: headerValue(res.headers['content-encoding']), contentLength: headerValue(res.headers['content-length']) }
    const read = await readBody(res.body, framing, opts, p, signal, { sink, contentType: p.contentType })
    return read.ok ? { ok: true, status: p.status, finalUrl: p.finalUrl, contentType: p.contentType, bytes: p.bytes, sha256: read.sha256, error: null, retryable: false } : failure(p, read.code, read.message)
  }
}

/** A non-2xx answer that is not followed: HTTP_STATUS, retryable per retry.ts. */
async function statusFailure (res: Dispatcher.ResponseData, p: Progress, signal: AbortSignal): Promise<AttemptResult> {
  await discard(res.body, signal)
  const s = res.statusCode
  const retryable = isRetryableStatus(s)
  const result = failure(p, 'HTTP_STATUS', `the server answered ${s}`, retryable)
  const retryAfterMs = retryable ? parseRetryAfter(headerValue(res.headers['retry-after'])) : undefined
  if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs
  if (s === 429 || s === 503) result.hostPause = true
  return result
}

// A job's request headers as sent, made once per headers object (a job's options) rather than
// once per URL; undici and nextHop only read them.
const sentHeaders = new WeakMap<Record<string, string>, Readonly<Record<string, string>>>()

function requestHeaders (extra: Record<string, string>): Readonly<Record<string, string>> {
  let headers = sentHeaders.get(extra)
  if (headers !== undefined) return headers
  const made: Record<string, string> = {}
  for (const [k, v] of Object.entries(extra)) made[k.toLowerCase()] = v
  made['accept-encoding'] = ACCEPT_ENCODING
  sentHeaders.set(extra, (headers = made))
  return headers
}

/** Reads just enough of an unwanted body to keep the connection, or drops the connection. */
async function discard (body: Dispatcher.ResponseData['body'], signal: AbortSignal): Promise<void> {
  try {
    await body.dump({ limit: 64 * 1024, signal })
  } catch {
    // Only an abort rejects; the next step sees the aborted signal and reports it.
  }
}

function headerValue (v: string | string[] | undefined): string | null {
  if (v === undefined) return null
  return Array.isArray(v) ? (v[0] ?? null) : v
}
