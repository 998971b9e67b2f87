import { request, type Dispatcher } from 'undici'
import { classify } from '../fetcher/classify.js'

/**
 * What fetching a robots.txt gave, in RFC 9309's terms:
 * - `fetched`: a 2xx; its text (the first `maxBytes` of it) holds the rules;
 * - `missing`: a 4xx (not 429), or more than five redirects: "unavailable", everything allowed;
 * - `unreachable`: a 5xx, a 429, a network error, a timeout: everything disallowed until the
 *   next try (RFC 9309 section 2.3.1.4; Google does the same for 5xx and 429);
 * - `blocked`: the address guard refused the host: nothing will reach it, robots.txt or page,
 *   so the rules allow everything and the URL's own fetch ends `BLOCKED_ADDRESS`, as the
 *   contract says, rather than `ROBOTS_DISALLOWED`.
 */
export interface RobotsFile {
  source: 'fetched' | 'missing' | 'unreachable' | 'blocked'
  text: string
  /** The last status seen, or 0 when no answer came. */
  status: number
}

export interface RobotsFetchOptions {
  dispatcher: Dispatcher
  userAgent: string
  /** Deadline of the whole fetch (every redirect and the body), in ms. */
  timeoutMs: number
  /** Bytes of the file kept; the rest is not read (Google reads 500 KiB). */
  maxBytes: number
}

// RFC 9309 section 2.3.1.2: follow at least five consecutive redirects.
const MAX_REDIRECTS = 5

/** Fetches `<origin>/robots.txt`; never throws: a failure is an `unreachable` (or `blocked`) file. */
export async function fetchRobots (origin: string, o: RobotsFetchOptions): Promise<RobotsFile> {
  const signal = AbortSignal.timeout(o.timeoutMs)
  let target = new URL('/robots.txt', origin)
  let status = 0
  try {
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const res = await request(target, {
        dispatcher: o.dispatcher,
        method: 'GET',
        headers: { 'user-agent': o.userAgent, accept: 'text/plain, */*;q=0.5' },
        signal
      })
      status = res.statusCode
      const location = res.headers.location
      if (status >= 300 && status < 400 && typeof location === 'string') {
        await res.body.dump()
        target = new URL(location, target)
        if (target.protocol !== 'http:' && target.protocol !== 'https:') break
        continue
      }
      if (status >= 200 && status < 300) return { source: 'fetched', text: await readCapped(res.body, o.maxBytes), status }
      await res.body.dump()
      const missing = status >= 400 && status < 500 && status !== 429
      return { source: missing ? 'missing' : 'unreachable', text: '', status }
    }
    return { source: 'missing', text: '', status }
  } catch (err) {
    return { source: classify(err).code === 'BLOCKED_ADDRESS' ? 'blocked' : 'unreachable', text: '', status }
  }
}

async function readCapped (body: Dispatcher.ResponseData['body'], maxBytes: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    const buf = chunk as Buffer
    chunks.push(buf.subarray(0, maxBytes - size))
    size += Math.min(buf.length, maxBytes - size)
    if (size >= maxBytes) {
      body.destroy()
      break
    }
  }
  return Buffer.concat(chunks).toString('utf8')
}
