import type { ResultErrorCode } from '../jobs/result-codes.js'

/**
 * Following one redirect hop: whether an answer is a redirect, where it leads (resolved against
 * the URL that answered), whether that scheme is followed, and which request headers may go on.
 */

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])
// Credentials meant for one origin must not follow a redirect to another (as fetch does).
const ORIGIN_BOUND_HEADERS = ['authorization', 'cookie', 'proxy-authorization']

/** The next hop to request, or why the redirect ends the attempt. */
export type Hop =
  | { ok: true, url: URL, headers: Record<string, string> }
  | { ok: false, code: Extract<ResultErrorCode, 'TOO_MANY_REDIRECTS' | 'HTTP_STATUS'>, message: string }

/** A status that redirects; without a Location header it is an answer like any other. */
export function isRedirectStatus (status: number): boolean {
  return REDIRECT_STATUSES.has(status)
}

/** The only schemes trawl requests, first URL or redirect target alike. */
export function isHttpUrl (url: URL): boolean {
  return url.protocol === 'http:' || url.protocol === 'https:'
}

/**
 * One redirect from `from` to its `location`, after `followed` redirects of at most `max`.
 * `headers` (lower-case names) is never changed: when the origin changes the hop gets a copy
 * without the origin-bound ones.
 */
export function nextHop (from: URL, location: string, headers: Readonly<Record<string, string>>, followed: number, max: number): Hop {
  if (followed >= max) return { ok: false, code: 'TOO_MANY_REDIRECTS', message: `more than ${max} redirects` }
  let url: URL
  try {
    url = new URL(location, from)
  } catch {
    return { ok: false, code: 'HTTP_STATUS', message: `redirect to an invalid location: ${location}` }
  }
  if (!isHttpUrl(url)) return { ok: false, code: 'HTTP_STATUS', message: `redirect to a ${url.protocol} URL, which is not followed` }
  if (url.origin === from.origin) return { ok: true, url, headers }
  const kept = { ...headers }
  for (const h of ORIGIN_BOUND_HEADERS) delete kept[h]
  return { ok: true, url, headers: kept }
}
