import { parseRetryAfter } from '../fetcher/retry.js'
import type { HostOutcome } from './slots.js'

/** The longest pause a response can put on a host (contract: up to 5 minutes). */
export const MAX_PAUSE_MS = 5 * 60_000

/**
 * The longest a URL waits for pauses of its host, from its first 429/503 answer: a pause
 * answer after that ends it `failed` with `TIMEOUT` (three pauses of the longest kind).
 */
export const PAUSED_URL_MAX_MS = 15 * 60_000

/**
 * `Retry-After` as the pause it asks of a host, in milliseconds from `now`: the fetcher's reading
 * of the header (delay-seconds or an HTTP date), capped at `MAX_PAUSE_MS`. Undefined when the
 * header is absent or unreadable; a date in the past is 0.
 */
export function pauseFromRetryAfter (value: string | string[] | undefined, now = Date.now()): number | undefined {
  const ms = parseRetryAfter((Array.isArray(value) ? value[0] : value) ?? null, now)
  return ms === undefined ? undefined : Math.min(ms, MAX_PAUSE_MS)
}

/**
 * What a response (or its absence: `status` 0 for a network error) says about its host:
 * - 429 or 503 with a readable Retry-After: pause the host until then (a 0 pause counts as a
 *   plain strike, or a server could hammer-loop us with `Retry-After: 0`);
 * - 429 or 503 without it: a strike (pauses that grow while they repeat);
 * - any other answer from the server: `ok`, which resets the strikes;
 * - no answer (network error, timeout): nothing learnt.
 */
export function hostOutcome (status: number, retryAfter: string | string[] | undefined, now = Date.now()): HostOutcome {
  return outcomeOf(status, pauseFromRetryAfter(retryAfter, now))
}

/** `hostOutcome` with Retry-After already read as ms (capped here at `MAX_PAUSE_MS`). */
export function outcomeOf (status: number, retryAfterMs: number | undefined): HostOutcome {
  if (status === 429 || status === 503) {
    return retryAfterMs !== undefined && retryAfterMs > 0 ? { kind: 'pause', ms: Math.min(retryAfterMs, MAX_PAUSE_MS) } : { kind: 'strike' }
  }
  if (status === 0) return { kind: 'none' }
  return { kind: 'ok' }
}
