import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import robotsParserModule from 'robots-parser'
import type { Dispatcher } from 'undici'
import { z } from 'zod'
import { hostKeys, hostOf } from './keys.js'
import { fetchRobots, type RobotsFile } from './robots-fetch.js'

/** What a host's robots.txt says about one URL. */
export interface RobotsVerdict {
  allowed: boolean
  /** The file's `Crawl-delay` for this agent, in ms (capped); 0 when none. */
  crawlDelayMs: number
  /** Where the verdict came from (see `RobotsFile`): `unreachable` disallows everything. */
  source: RobotsFile['source']
}

export interface Robots {
  /** Checks `url` against its origin's robots.txt, fetching it when no worker has it cached. */
  allowed(url: string, userAgent?: string): Promise<RobotsVerdict>
  /** robots.txt fetches this instance made (for tests and metrics). */
  readonly fetches: number
}

export interface RobotsOptions {
  /** A connection of role `worker`. */
  redis: Redis
  prefix: string
  /** The worker's guarded dispatcher: robots.txt goes through the address guard too. */
  dispatcher: Dispatcher
  /** Sent when fetching, and matched against the file's groups unless `allowed` names another. */
  userAgent: string
  /** Deadline of one robots.txt fetch, in ms. @defaultValue 10000 */
  timeoutMs?: number
  /** Bytes of a robots.txt read. @defaultValue 524288 */
  maxBytes?: number
  /** Ms a fetched or missing file is cached, for every worker. @defaultValue 3600000 */
  cacheMs?: number
  /** Ms an unreachable one (disallow all) is cached before the next try. @defaultValue 60000 */
  unreachableCacheMs?: number
  /** Longest `Crawl-delay` honoured, in ms. @defaultValue 60000 */
  maxCrawlDelayMs?: number
}

// The package is CommonJS with ESM-style types: its default import is the function itself.
const robotsParser = robotsParserModule as unknown as typeof robotsParserModule.default
type Parsed = ReturnType<typeof robotsParser>
const cachedSchema = z.object({ source: z.enum(['fetched', 'missing', 'unreachable', 'blocked']), text: z.string(), expiresAt: z.number() })
type Cached = z.infer<typeof cachedSchema>
interface Entry { robot: Parsed, cached: Cached }

// Parsed files kept in this process, each until its Redis copy expires.
const MEMO_SIZE = 1000

export function createRobots (o: RobotsOptions): Robots {
  const timeoutMs = o.timeoutMs ?? 10_000
  const cacheMs = o.cacheMs ?? 3_600_000
  const unreachableMs = o.unreachableCacheMs ?? 60_000
  const maxDelayMs = o.maxCrawlDelayMs ?? 60_000
  const memo = new Map<string, Entry>()
  const loading = new Map<string, Promise<Entry>>()
  let fetches = 0

  function remember (origin: string, cached: Cached): Entry {
    const entry = { robot: robotsParser(`${origin}/robots.txt`, cached.text), cached }
    if (memo.size >= MEMO_SIZE) memo.delete(memo.keys().next().value as string)
    memo.set(origin, entry)
    return entry
  }

  async function read (key: string): Promise<Cached | null> {
    const raw = await o.redis.get(key)
    if (raw === null) return null
    const parsed = cachedSchema.safeParse(JSON.parse(raw))
    return parsed.success ? parsed.data : null
  }

  async function fetchAndStore (origin: string, key: string, lock: string): Promise<Cached> {
    fetches++
    const file = await fetchRobots(origin, { dispatcher: o.dispatcher, userAgent: o.userAgent, timeoutMs, maxBytes: o.maxBytes ?? 512 * 1024 })
    // A blocked host is kept as briefly as an unreachable one: FETCH_ALLOW_CIDRS may open it.
    const ttl = file.source === 'unreachable' || file.source === 'blocked' ? unreachableMs : cacheMs
    const cached = { source: file.source, text: file.text, expiresAt: Date.now() + ttl }
    // The lock goes with the write (same slot), so the next fetch, an hour on, need not wait.
    await o.redis.multi().set(key, JSON.stringify(cached), 'PX', ttl).del(lock).exec()
    return cached
  }

  // One fetch per origin across every worker: whoever takes the lock fetches, the others read
  // the cache when it appears (polling a little, up to the lock's life; then they fetch).
  async function load (origin: string): Promise<Entry> {
    const keys = hostKeys(o.prefix, hostOf(origin))
    const key = keys.robots(origin)
    const lockMs = timeoutMs + 2000
    const deadline = Date.now() + lockMs
    for (let pause = 20; ; pause = Math.min(pause * 2, 500)) {
      const cached = await read(key)
      if (cached !== null) return remember(origin, cached)
      const lock = keys.robotsLock(origin)
      const locked = await o.redis.set(lock, randomBytes(8).toString('hex'), 'PX', lockMs, 'NX')
      if (locked === 'OK' || Date.now() >= deadline) {
        // Written (with the lock let go) between our read and our lock: no need to fetch.
        const written = locked === 'OK' ? await read(key) : null
        return remember(origin, written ?? await fetchAndStore(origin, key, lock))
      }
      await new Promise((resolve) => setTimeout(resolve, pause))
    }
  }

  async function entryFor (origin: string): Promise<Entry> {
    const known = memo.get(origin)
    if (known && known.cached.expiresAt > Date.now()) return known
    let pending = loading.get(origin)
    if (!pending) {
      pending = load(origin).finally(() => loading.delete(origin))
      loading.set(origin, pending)
    }
    return pending
  }

  async function allowed (url: string, userAgent = o.userAgent): Promise<RobotsVerdict> {
    const { origin } = new URL(url)
    const { robot, cached } = await entryFor(origin)
    if (cached.source === 'unreachable') return { allowed: false, crawlDelayMs: 0, source: cached.source }
    const delay = robot.getCrawlDelay(userAgent)
    return {
      // undefined: the URL is not of this file's origin, which cannot happen here.
      allowed: robot.isAllowed(url, userAgent) !== false,
      crawlDelayMs: delay === undefined || !(delay > 0) ? 0 : Math.min(Math.round(delay * 1000), maxDelayMs),
      source: cached.source
    }
  }

  return { allowed, get fetches () { return fetches } }
}
