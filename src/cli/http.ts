import type { Readable } from 'node:stream'
import { request, type Dispatcher } from 'undici'
import { checkDocument, type JobDocument } from './documents.js'
import { ProblemError, ProtocolError, UnreachableError } from './errors.js'

/** What `POST /jobs` takes; options the user did not give are left to the server's defaults. */
export interface SubmitRequest {
  urls: string[]
  options: {
    concurrency?: number
    timeoutMs?: number
    retries?: number
    maxBytes?: number
    keepContent?: boolean
  }
}

export interface ClientOptions {
  /**
   * Milliseconds a plain request (not the event stream, not a body download) may take.
   * @defaultValue 30000
   */
  requestTimeoutMs?: number
  /** Sent as `Authorization: Bearer <key>` when the server has API_KEYS. */
  apiKey?: string | undefined
}

const MAX_PAGE = 1000

/**
 * The trawl HTTP API as seen from the command line, over the global fetch. Every failure comes
 * out as an `UnreachableError` (no answer), a `ProblemError` (a problem document) or a
 * `ProtocolError` (an answer that is not trawl's).
 */
export class TrawlClient {
  readonly #base: URL
  readonly #timeoutMs: number
  readonly #auth: Record<string, string>

  constructor (server: string | URL, options: ClientOptions = {}) {
    this.#base = new URL(server)
    this.#timeoutMs = options.requestTimeoutMs ?? 30_000
    this.#auth = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}
  }

  get server (): string {
    return this.#base.href.replace(/\/$/, '')
  }

  /** `path` is server-relative (`/jobs/...`, as `contentUrl` is); a path prefix of --server is kept. */
  url (path: string): URL {
    const url = new URL(this.#base)
    url.pathname = url.pathname.replace(/\/$/, '') + path.replace(/\?.*$/, '')
    url.search = path.includes('?') ? path.slice(path.indexOf('?')) : ''
    return url
  }

  async submit (body: SubmitRequest, signal?: AbortSignal): Promise<JobDocument> {
    const res = await this.#send('POST', '/jobs', { body, signal })
    return checkDocument(await this.#json(res), 'the submitted job')
  }

  async read (id: string, query: { results?: 'none', offset?: number, limit?: number } = {}, signal?: AbortSignal): Promise<JobDocument> {
    const params = new URLSearchParams()
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value))
    const qs = params.size > 0 ? `?${params}` : ''
    const res = await this.#send('GET', `${jobPath(id)}${qs}`, { signal })
    return checkDocument(await this.#json(res), `job ${id}`)
  }

  /** The job document with every result, read page by page (1,000 at a time); `page` is left out. */
  async readAll (id: string, signal?: AbortSignal): Promise<JobDocument> {
    const doc = await this.read(id, { offset: 0, limit: MAX_PAGE }, signal)
    const results = [...(doc.results ?? [])]
    while (results.length < doc.total) {
      const page = await this.read(id, { offset: results.length, limit: MAX_PAGE }, signal)
      const more = page.results ?? []
      if (more.length === 0) break
      results.push(...more)
    }
    const { page: _page, ...rest } = doc
    return { ...rest, results }
  }

  async cancel (id: string, signal?: AbortSignal): Promise<JobDocument> {
    const res = await this.#send('DELETE', jobPath(id), { signal })
    return checkDocument(await this.#json(res), `job ${id}`)
  }

  /**
   * The stored body of a result, as a stream, through `dispatcher` (a keep-alive pool shared by
   * many downloads: save.ts). No overall timeout, since bodies may be large; the headers, and
   * each pause in the body, may take the request timeout at most.
   */
  async content (contentUrl: string, dispatcher: Dispatcher, signal?: AbortSignal): Promise<Readable> {
    const url = this.url(contentUrl)
    let res: Dispatcher.ResponseData
    try {
      res = await request(url, { dispatcher, signal, headers: this.#auth, headersTimeout: this.#timeoutMs, bodyTimeout: this.#timeoutMs })
    } catch (err) {
      if (signal?.aborted) throw err
      throw new UnreachableError(`cannot reach ${this.server}: ${describeFetchError(err, this.#timeoutMs)}`, { cause: err })
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return res.body
    const text = await res.body.text().catch(() => '')
    throw problemFrom(res.statusCode, '', text, url.href)
  }

  /** Opens `GET /jobs/:id/events`, after `lastEventId` when given. The caller reads and ends it. */
  async events (id: string, lastEventId: string | undefined, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId
    const res = await this.#send('GET', `${jobPath(id)}/events`, { signal, headers, timeout: false })
    if (!/^text\/event-stream/.test(res.headers.get('content-type') ?? '') || !res.body) {
      await res.body?.cancel()
      throw new ProtocolError(`${this.server} did not answer with an event stream for job ${id}`)
    }
    return res
  }

  async #send (method: string, path: string, opts: { body?: unknown, signal?: AbortSignal | undefined, headers?: Record<string, string>, timeout?: false }): Promise<Response> {
    const signals = [opts.signal, opts.timeout === false ? undefined : AbortSignal.timeout(this.#timeoutMs)].filter((s) => s !== undefined)
    const url = this.url(path)
    let res: Response
    try {
      res = await fetch(url, {
        method,
        headers: { accept: 'application/json', ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }), ...this.#auth, ...opts.headers },
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: signals.length > 0 ? AbortSignal.any(signals) : undefined,
        redirect: 'error'
      })
    } catch (err) {
      if (opts.signal?.aborted) throw err
      throw new UnreachableError(`cannot reach ${this.server}: ${describeFetchError(err, this.#timeoutMs)}`, { cause: err })
    }
    if (!res.ok) throw await problemOf(res)
    return res
  }

  async #json (res: Response): Promise<unknown> {
    let text: string
    try {
      text = await res.text()
    } catch (err) {
      throw new UnreachableError(`${this.server} broke off its answer: ${describeFetchError(err, this.#timeoutMs)}`, { cause: err })
    }
    try {
      return JSON.parse(text)
    } catch (err) {
      throw new ProtocolError(`${this.server} answered ${res.status} with something that is not JSON`, { cause: err })
    }
  }
}

function jobPath (id: string): string {
  return `/jobs/${encodeURIComponent(id)}`
}

/** Reads a non-2xx answer as a problem document; anything else becomes an `HTTP_<status>` problem. */
async function problemOf (res: Response): Promise<ProblemError> {
  return problemFrom(res.status, res.statusText, await res.text().catch(() => ''), res.url)
}

function problemFrom (status: number, statusText: string, text: string, url: string): ProblemError {
  let body: unknown = null
  try {
    body = JSON.parse(text)
  } catch {}
  if (isRecord(body) && typeof body.code === 'string') {
    const detail = typeof body.detail === 'string' ? body.detail : typeof body.title === 'string' ? body.title : statusText
    const errors = Array.isArray(body.errors)
      ? body.errors.filter(isRecord).map((e) => ({ path: String(e.path ?? ''), message: String(e.message ?? '') }))
      : []
    return new ProblemError(status, body.code, detail, errors)
  }
  return new ProblemError(status, `HTTP_${status}`, `${statusText || 'no reason given'} (${url})`)
}

function describeFetchError (err: unknown, timeoutMs: number): string {
  if (err instanceof DOMException && err.name === 'TimeoutError') return `no answer within ${timeoutMs / 1000} s`
  if (err instanceof AggregateError && err.errors[0] instanceof Error) return err.errors[0].message
  const cause = err instanceof Error ? err.cause : undefined
  if (cause instanceof Error) {
    // An AggregateError (IPv4 and IPv6 both refused) has no message of its own; take its first.
    if (cause instanceof AggregateError && cause.errors[0] instanceof Error) return cause.errors[0].message
    return cause.message || String((cause as { code?: unknown }).code ?? cause.name)
  }
  return err instanceof Error ? err.message : String(err)
}

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
