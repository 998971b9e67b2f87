import { Transform, Writable } from 'node:stream'
import type { TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setTimeout as delay } from 'node:timers/promises'
import zlib from 'node:zlib'
import { request } from 'undici'
import type { Dispatcher } from 'undici'

export type FetchErrorCode =
  | 'BLOCKED_ADDRESS'
  | 'DNS_FAILED'
  | 'CONNECT_FAILED'
  | 'TLS_FAILED'
  | 'TIMEOUT'
  | 'TOO_LARGE'
  | 'TOO_MANY_REDIRECTS'
  | 'HTTP_STATUS'
  | 'NETWORK'
  | 'CANCELLED'
  | 'INTERNAL'

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
  /** Keep the body in `PageResult.body`; when false the body is counted and dropped as it streams. */
  keepContent: boolean
  /** Extra attempts after a retryable failure (network fault, timeout, 408, 429, 5xx). */
  retries: number
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
  /** The decoded body, only when `ok` and `keepContent`. */
  body: Buffer | null
  error: { code: FetchErrorCode, message: string } | null
  /** Attempts made; 0 when the signal was aborted before the first. */
  attempts: number
  /** Milliseconds from the call to the result, backoff waits included. */
  durationMs: number
}

export interface FetchHooks {
  /** Waits `ms` milliseconds, or rejects as soon as `signal` aborts. Tests replace it. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
  /** A number in [0, 1) for the backoff's jitter. @defaultValue Math.random */
  random?: () => number
}

/** Backoff before the first retry, doubled for each one after, in milliseconds. */
export const BACKOFF_BASE_MS = 250
/** The longest backoff wait, in milliseconds. */
export const BACKOFF_CAP_MS = 10_000
/** The longest `Retry-After` honoured; a server asking for more ends the URL with its answer. */
export const RETRY_AFTER_MAX_MS = 60_000

const ACCEPT_ENCODING = 'gzip, deflate, br'
const REDIRECTS = new Set([301, 302, 303, 307, 308])
// Credentials meant for one origin must not follow a redirect to another (as fetch does).
const ORIGIN_BOUND_HEADERS = ['authorization', 'cookie', 'proxy-authorization']

interface AttemptResult extends Omit<PageResult, 'attempts' | 'durationMs'> {
  retryable: boolean
  /** Milliseconds the server asked to wait (Retry-After), if it did. */
  retryAfterMs?: number
}

interface Progress {
  status: number | null
  finalUrl: string | null
  contentType: string | null
  bytes: number
}

class TooLargeError extends Error {
  readonly code = 'TOO_LARGE'
}

class DeadlineError extends Error {
  readonly code = 'TIMEOUT'
}

function failure (p: Progress, code: FetchErrorCode, message: string, retryable = false): AttemptResult {
  const { status, finalUrl, contentType, bytes } = p
  return { ok: false, status, finalUrl, contentType, bytes, body: null, error: { code, message }, retryable }
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
  const done = (r: AttemptResult, attempts: number): PageResult => {
    const { retryable: _r, retryAfterMs: _a, ...rest } = r
    return { ...rest, attempts, durationMs: Math.round(performance.now() - started) }
  }
  const fresh: Progress = { status: null, finalUrl: null, contentType: null, bytes: 0 }

  if (signal.aborted) return done(failure(fresh, 'CANCELLED', 'cancelled before the download started'), 0)

  let attempts = 0
  for (;;) {
    attempts++
    const result = await attemptOnce(dispatcher, url, opts, signal)
    if (result.ok || !result.retryable || attempts > opts.retries) return done(result, attempts)

    let waitMs: number
    if (result.retryAfterMs !== undefined) {
      if (result.retryAfterMs > RETRY_AFTER_MAX_MS) return done(result, attempts)
      waitMs = result.retryAfterMs
    } else {
      // Full jitter (uniform in [0, ceiling)) keeps many workers from retrying in lockstep.
      waitMs = random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (attempts - 1))
    }
    try {
      await sleep(Math.round(waitMs), signal)
    } catch {
      return done(failure(result, 'CANCELLED', 'cancelled while waiting to retry'), attempts)
    }
    if (signal.aborted) return done(failure(result, 'CANCELLED', 'cancelled while waiting to retry'), attempts)
  }
}

/** One attempt: every redirect hop, headers and body, under one deadline. */
async function attemptOnce (dispatcher: Dispatcher, startUrl: string, opts: FetchOptions, signal: AbortSignal): Promise<AttemptResult> {
  const p: Progress = { status: null, finalUrl: null, contentType: null, bytes: 0 }
  // One controller for the caller's abort and the deadline. Linked by hand rather than with
  // AbortSignal.any so that the listener on the caller's long-lived signal is surely removed.
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(new DeadlineError(`no complete answer within ${opts.timeoutMs} ms`)), opts.timeoutMs)
  const onAbort = (): void => ac.abort(signal.reason)
  signal.addEventListener('abort', onAbort, { once: true })

  try {
    let url: URL
    try {
      url = new URL(startUrl)
    } catch {
      return failure(p, 'INTERNAL', `not an absolute URL: ${startUrl}`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return failure(p, 'INTERNAL', `not an http or https URL: ${startUrl}`)
    }
    const headers = requestHeaders(opts.headers)

    for (let redirects = 0; ; redirects++) {
      p.finalUrl = url.href
      p.contentType = null
      const res = await request(url, { dispatcher, method: 'GET', headers, signal: ac.signal })
      p.status = res.statusCode
      p.contentType = headerValue(res.headers['content-type'])
      const location = headerValue(res.headers.location)

      if (REDIRECTS.has(res.statusCode) && location !== null) {
        await discard(res.body, ac.signal)
        if (redirects >= opts.maxRedirects) {
          return failure(p, 'TOO_MANY_REDIRECTS', `more than ${opts.maxRedirects} redirects`)
        }
        let next: URL
        try {
          next = new URL(location, url)
        } catch {
          return failure(p, 'HTTP_STATUS', `redirect to an invalid location: ${location}`)
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          return failure(p, 'HTTP_STATUS', `redirect to a ${next.protocol} URL, which is not followed`)
        }
        if (next.origin !== url.origin) for (const h of ORIGIN_BOUND_HEADERS) delete headers[h]
        url = next
        continue
      }

      if (res.statusCode < 200 || res.statusCode > 299) {
        await discard(res.body, ac.signal)
        const s = res.statusCode
        const retryable = s === 408 || s === 429 || s >= 500
        const result = failure(p, 'HTTP_STATUS', `the server answered ${s}`, retryable)
        const retryAfterMs = retryable ? parseRetryAfter(headerValue(res.headers['retry-after'])) : undefined
        if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs
        return result
      }

      return await readBody(res, opts, p, ac.signal)
    }
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

async function readBody (res: Dispatcher.ResponseData, opts: FetchOptions, p: Progress, signal: AbortSignal): Promise<AttemptResult> {
  const encodings = contentCodings(headerValue(res.headers['content-encoding']))
  const declared = Number(headerValue(res.headers['content-length']) ?? NaN)
  if (encodings.length === 0 && declared > opts.maxBytes) {
    res.body.destroy()
    return failure(p, 'TOO_LARGE', `the body is ${declared} bytes, more than maxBytes (${opts.maxBytes})`)
  }
  if (encodings.length === 0) return readPlainBody(res, opts, p)

  const chunks: Buffer[] = []
  const sink = new Writable({
    write (chunk: Buffer, _enc, cb) {
      p.bytes += chunk.length
      if (p.bytes > opts.maxBytes) {
        cb(new TooLargeError(`the decoded body exceeds maxBytes (${opts.maxBytes})`))
        return
      }
      if (opts.keepContent) chunks.push(chunk)
      cb()
    }
  })
  try {
    // pipeline destroys every stage on failure: the body is not read any further, and a
    // decompression bomb stops at maxBytes because zlib honours backpressure.
    await pipeline([res.body, ...encodings.map(decoderFor), sink], { signal })
  } catch (err) {
    if (err instanceof TooLargeError) return failure(p, 'TOO_LARGE', err.message)
    if (signal.aborted) throw err
    if (isDecodeError(err)) return failure(p, 'NETWORK', `the ${encodings.join(', ')} body could not be decoded: ${(err as Error).message}`)
    throw err
  }
  return { ok: true, ...p, body: opts.keepContent ? Buffer.concat(chunks, p.bytes) : null, error: null, retryable: false }
}

/**
 * A body with no content coding, read with a plain loop: a stream pipeline costs about as much
 * CPU per small page as the rest of the fetch (bench/fetch-micro.ts). The request's signal
 * destroys the body on abort, and leaving the loop early destroys it too.
 */
async function readPlainBody (res: Dispatcher.ResponseData, opts: FetchOptions, p: Progress): Promise<AttemptResult> {
  const chunks: Buffer[] = []
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    p.bytes += chunk.length
    if (p.bytes > opts.maxBytes) return failure(p, 'TOO_LARGE', `the decoded body exceeds maxBytes (${opts.maxBytes})`)
    if (opts.keepContent) chunks.push(chunk)
  }
  const body = !opts.keepContent ? null : chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks, p.bytes)
  return { ok: true, ...p, body, error: null, retryable: false }
}

function requestHeaders (extra: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(extra)) headers[k.toLowerCase()] = v
  headers['accept-encoding'] = ACCEPT_ENCODING
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

/** The codings to undo, outermost first; [] when there is nothing trawl can decode. */
function contentCodings (header: string | null): string[] {
  if (header === null) return []
  const codings = header.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity')
  // All or nothing, as undici's fetch does: with a coding trawl cannot undo anywhere in the
  // list, the body is kept as it came.
  if (!codings.every((c) => c === 'gzip' || c === 'x-gzip' || c === 'deflate' || c === 'br')) return []
  return codings.reverse()
}

// Browsers and curl accept a body cut short of its compression trailer (and an empty one);
// Z_SYNC_FLUSH lets zlib end there too, while the HTTP framing still catches a short transfer.
const zlibLenient = { flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH }
const brotliLenient = { flush: zlib.constants.BROTLI_OPERATION_FLUSH, finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH }

function decoderFor (coding: string): Transform {
  if (coding === 'br') return zlib.createBrotliDecompress(brotliLenient)
  if (coding === 'deflate') return new InflateAuto()
  return zlib.createGunzip(zlibLenient)
}

/**
 * "deflate" is meant to be zlib-wrapped (RFC 9110), but some servers send raw deflate; the
 * first byte tells them apart. The inner inflater's output is paused while this stream's
 * reader is full, so backpressure (and with it the size cap) holds through the wrapper.
 */
class InflateAuto extends Transform {
  #inner: zlib.Inflate | zlib.InflateRaw | null = null

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#inner === null) {
      if (chunk.length === 0) {
        cb()
        return
      }
      // A zlib header's low nibble is 8 (the deflate method); a raw stream's first byte is not.
      const inner = ((chunk[0] ?? 0) & 0x0f) === 0x08 ? zlib.createInflate(zlibLenient) : zlib.createInflateRaw(zlibLenient)
      inner.on('data', (d: Buffer) => { if (!this.push(d)) inner.pause() })
      inner.on('error', (err) => this.destroy(err))
      this.#inner = inner
    }
    this.#inner.write(chunk, cb)
  }

  override _read (size: number): void {
    this.#inner?.resume()
    super._read(size)
  }

  override _flush (cb: TransformCallback): void {
    const inner = this.#inner
    if (inner === null) {
      cb()
      return
    }
    inner.once('end', () => cb())
    inner.end()
  }

  override _destroy (err: Error | null, cb: (error?: Error | null) => void): void {
    this.#inner?.destroy()
    cb(err)
  }
}

function isDecodeError (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ERR_BROTLI') || code === 'ERR_ZLIB_INITIALIZATION_FAILED')
}

/** Retry-After as milliseconds from now (delta-seconds or HTTP-date); undefined when absent or unreadable. */
export function parseRetryAfter (value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined
  const v = value.trim()
  if (/^\d+$/.test(v)) return Number(v) * 1000
  // Every HTTP-date form starts with a day name; Date.parse alone would read "1.5" or "-5" as dates.
  if (!/^[A-Za-z]{3}/.test(v)) return undefined
  const at = Date.parse(v)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, at - now)
}

const DNS_PERMANENT = new Set(['ENOTFOUND', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA', 'ENODATA'])
const DNS_TRANSIENT = new Set(['EAI_AGAIN'])
const CONNECT = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ETIMEDOUT', 'EADDRNOTAVAIL'])
const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])
// OpenSSL's certificate verdicts come through with these codes rather than an ERR_ prefix.
const TLS_CODES = new Set([
  'EPROTO', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_REVOKED', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'HOSTNAME_MISMATCH'
])

interface Classified { code: FetchErrorCode, message: string, retryable: boolean }

/** Every error in a cause / AggregateError chain, outermost first. */
function chain (err: unknown): unknown[] {
  const out: unknown[] = []
  const queue: unknown[] = [err]
  while (queue.length > 0 && out.length < 16) {
    const e = queue.shift()
    if (e === null || e === undefined || out.includes(e)) continue
    out.push(e)
    if (typeof e === 'object') {
      const { cause, errors } = e as { cause?: unknown, errors?: unknown }
      if (cause !== undefined) queue.push(cause)
      if (Array.isArray(errors)) queue.push(...(errors as unknown[]))
    }
  }
  return out
}

/**
 * Sorts a transport error into the contract's codes, and says whether another attempt could
 * fare better. DNS_FAILED is retryable only for EAI_AGAIN (the resolver could not answer now);
 * ENOTFOUND is the name's authoritative absence, which a retry seconds later will not change.
 */
export function classify (err: unknown): Classified {
  const errors = chain(err)
  const messageOf = (e: unknown): string => (e instanceof Error && e.message !== '' ? e.message : String(e))
  const find = (pred: (code: string) => boolean): unknown => errors.find((e) => {
    const code = (e as { code?: unknown }).code
    return typeof code === 'string' && pred(code)
  })

  let e = find((c) => c === 'BLOCKED_ADDRESS')
  if (e !== undefined) return { code: 'BLOCKED_ADDRESS', message: messageOf(e), retryable: false }
  if ((e = find((c) => DNS_PERMANENT.has(c))) !== undefined) return { code: 'DNS_FAILED', message: messageOf(e), retryable: false }
  if ((e = find((c) => DNS_TRANSIENT.has(c))) !== undefined) return { code: 'DNS_FAILED', message: messageOf(e), retryable: true }
  if ((e = find((c) => c.startsWith('ERR_TLS_') || c.startsWith('ERR_SSL_') || c.startsWith('ERR_OSSL_') || TLS_CODES.has(c))) !== undefined) {
    return { code: 'TLS_FAILED', message: messageOf(e), retryable: false }
  }
  if ((e = find((c) => CONNECT.has(c))) !== undefined) return { code: 'CONNECT_FAILED', message: messageOf(e), retryable: true }
  if ((e = find((c) => TIMEOUTS.has(c))) !== undefined) return { code: 'TIMEOUT', message: messageOf(e), retryable: true }
  if ((e = find((c) => c === 'UND_ERR_HEADERS_OVERFLOW')) !== undefined) return { code: 'NETWORK', message: messageOf(e), retryable: false }
  if ((e = find((c) => c === 'UND_ERR_INVALID_ARG' || c.startsWith('ERR_INVALID_') || c === 'UND_ERR_NOT_SUPPORTED')) !== undefined) {
    return { code: 'INTERNAL', message: messageOf(e), retryable: false }
  }
  // What is left with a code is a transport fault: resets, closed sockets, framing and parser
  // errors (UND_ERR_SOCKET, ECONNRESET, EPIPE, HPE_*, content-length mismatch, ...).
  if ((e = find(() => true)) !== undefined) return { code: 'NETWORK', message: messageOf(e), retryable: true }
  return { code: 'INTERNAL', message: 'unexpected error: ' + messageOf(err), retryable: false }
}
