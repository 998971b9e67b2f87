import { request, type Dispatcher } from 'undici'
import { classify } from '../fetcher/classify.js'
import { webhookHeaders } from './sign.js'

/** The contract's limit for one delivery attempt, headers and body. */
export const CALLBACK_TIMEOUT_MS = 10_000

export interface Delivery {
  ok: boolean
  status: number | null
  /** Why the attempt failed, for `callback.lastError`; null when it succeeded. */
  error: string | null
  /** False when trying again cannot help (a blocked address). */
  retryable: boolean
}

/**
 * One signed POST of a callback. Redirects are never followed (a 3xx is a failed attempt), and
 * the dispatcher is the worker's guarded one, so the target passes the same address guard as
 * downloads.
 */
export async function deliverCallback (dispatcher: Dispatcher, url: string, opts: { secret: string, webhookId: string, body: string, userAgent?: string, now?: () => number }): Promise<Delivery> {
  const timestamp = Math.floor((opts.now ?? Date.now)() / 1000)
  const signal = AbortSignal.timeout(CALLBACK_TIMEOUT_MS)
  try {
    const res = await request(url, {
      method: 'POST',
      dispatcher,
      signal,
      headersTimeout: CALLBACK_TIMEOUT_MS,
      bodyTimeout: CALLBACK_TIMEOUT_MS,
      headers: {
        'content-type': 'application/json',
        'user-agent': opts.userAgent ?? 'trawl-callback/0.1',
        ...webhookHeaders(opts.secret, opts.webhookId, timestamp, opts.body)
      },
      body: opts.body
    })
    // The answer's body is not ours to read; drop it so the socket is reused.
    await res.body.dump({ limit: 64 * 1024 }).catch(() => {})
    if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true, status: res.statusCode, error: null, retryable: false }
    const why = res.statusCode >= 300 && res.statusCode < 400 ? `redirect not followed (HTTP ${res.statusCode})` : `HTTP ${res.statusCode}`
    return { ok: false, status: res.statusCode, error: why, retryable: true }
  } catch (err) {
    const c = signal.aborted ? { code: 'TIMEOUT', message: `no answer within ${CALLBACK_TIMEOUT_MS} ms`, retryable: true } : classify(err)
    return { ok: false, status: null, error: `${c.code}: ${c.message}`, retryable: c.code !== 'BLOCKED_ADDRESS' }
  }
}
