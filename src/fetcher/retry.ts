/**
 * The retry policy of one URL: which answers are worth another attempt, and how long to wait
 * before it (exponential backoff with full jitter, or the server's Retry-After within a cap).
 */

/** Backoff before the first retry, doubled for each one after, in milliseconds. */
export const BACKOFF_BASE_MS = 250
/** The longest backoff wait, in milliseconds. */
export const BACKOFF_CAP_MS = 10_000
/** The longest `Retry-After` honoured; a server asking for more ends the URL with its answer. */
export const RETRY_AFTER_MAX_MS = 60_000

/** HTTP statuses another attempt may fix: 408, 429 and every 5xx. */
export function isRetryableStatus (status: number): boolean {
  return status === 408 || status === 429 || status >= 500
}

/**
 * The backoff before retry number `retry` (1 for the first), in milliseconds, not rounded:
 * uniform in [0, min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2^(retry - 1))). Full jitter keeps many
 * workers from retrying in lockstep. `random` returns a number in [0, 1).
 */
export function backoffMs (retry: number, random: () => number): number {
  return random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (retry - 1))
}

/**
 * Whole milliseconds to wait before the next attempt after `attempts` attempts, or null when
 * the server asked for longer than RETRY_AFTER_MAX_MS and its answer stands. `random` is called
 * only when there is no Retry-After to honour.
 */
export function retryWaitMs (attempts: number, retryAfterMs: number | undefined, random: () => number): number | null {
  if (retryAfterMs === undefined) return Math.round(backoffMs(attempts, random))
  if (retryAfterMs > RETRY_AFTER_MAX_MS) return null
  return Math.round(retryAfterMs)
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
