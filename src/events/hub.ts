import type { Redis } from 'ioredis'
import type { Logger } from 'pino'

export type StreamEntry = [id: string, fields: string[]]

/**
 * One blocking reader per API process for every job stream its clients follow: a single XREAD
 * over all watched streams, fanned out to the subscribers of each. A subscriber that arrives
 * while the read is blocked interrupts it (CLIENT UNBLOCK) so its stream joins at once.
 */
export interface EventHub {
  /** Delivers each batch of entries of `key` newer than `after` until the returned function is called. */
  subscribe(key: string, after: string, deliver: (entries: StreamEntry[]) => void): () => void
  /** Number of subscriptions, for tests and metrics. */
  readonly size: number
  close(): Promise<void>
}

interface Subscriber {
  after: string
  deliver: (entries: StreamEntry[]) => void
}

interface Watched {
  cursor: string
  subs: Set<Subscriber>
}

/** What XREAD answers: each stream with entries, in the order asked; null when the block timed out. */
type Replies = Array<[key: string, entries: StreamEntry[]]> | null

// How long one XREAD may block: a backstop for an interruption that raced the read.
const BLOCK_MS = 2000

/** Orders stream ids ("ms-seq"). */
export function compareIds (a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number)
  const [bm = 0, bs = 0] = b.split('-').map(Number)
  return am - bm || as - bs
}

/**
 * Hands `sub` the entries of a non-empty batch it has not had yet, and moves it past them; a
 * subscriber that throws is logged, never allowed to stop the others.
 */
function deliverNewer (sub: Subscriber, entries: StreamEntry[], logger: Logger) {
  const first = entries[0] as StreamEntry
  // Usually every client of a stream is at the same place: they all get the same array,
  // which lets the caller render a batch once for all of them.
  const fresh = compareIds(first[0], sub.after) > 0 ? entries : entries.filter(([id]) => compareIds(id, sub.after) > 0)
  const newest = fresh[fresh.length - 1]
  if (!newest) return
  sub.after = newest[0]
  try {
    sub.deliver(fresh)
  } catch (err) {
    logger.error({ err }, 'event subscriber failed')
  }
}

/**
 * A factory: its closures share the watched streams and the reader's state.
 *
 * @param reader a connection of its own: it spends its time blocked in XREAD.
 * @param control any other connection, used to interrupt the reader.
 */
export function createEventHub (reader: Redis, control: Redis, logger: Logger): EventHub {
  const watched = new Map<string, Watched>()
  let count = 0
  let closed = false
  let blocking = false
  let dirty = false
  let readerId: number | null = null
  let wake: (() => void) | null = null

  function interrupt () {
    if (!blocking || readerId === null) return
    control.client('UNBLOCK', readerId).catch(() => {})
  }

  /** Resolves once a subscriber arrives or the hub closes. */
  async function idle () {
    await new Promise<void>((resolve) => { wake = resolve })
    wake = null
  }

  /** One blocking XREAD over every watched stream, each from its cursor; throws what the read throws. */
  async function read (): Promise<Replies> {
    dirty = false
    const keys = [...watched.keys()]
    const ids = keys.map((k) => watched.get(k)?.cursor ?? '$')
    try {
      // The id changes with each connection; asked again only after a reconnect.
      readerId ??= Number(await reader.client('ID'))
      blocking = true
      const replies = reader.xread('COUNT', 1000, 'BLOCK', BLOCK_MS, 'STREAMS', ...keys, ...ids) as Promise<Replies>
      // The set of streams changed while this read was being built: interrupt it at once.
      if (dirty) interrupt()
      return await replies
    } finally {
      blocking = false
    }
  }

  /** Moves each stream's cursor past what was read and hands the entries to its subscribers. */
  function fanOut (replies: Replies) {
    for (const [key, entries] of replies ?? []) {
      const w = watched.get(key)
      const last = entries[entries.length - 1]
      if (!w || !last) continue
      if (compareIds(last[0], w.cursor) > 0) w.cursor = last[0]
      for (const sub of w.subs) deliverNewer(sub, entries, logger)
    }
  }

  async function loop () {
    // eslint-disable-next-line no-unmodified-loop-condition -- close() sets it while the loop awaits
    while (!closed) {
      if (watched.size === 0) {
        await idle()
        continue
      }
      let replies: Replies
      try {
        replies = await read()
      } catch (err) {
        if (closed) break
        logger.warn({ err }, 'event reader failed; retrying')
        await new Promise((resolve) => setTimeout(resolve, 500))
        continue
      }
      fanOut(replies)
    }
  }

  reader.on('ready', () => { readerId = null })
  const running = loop()

  function subscribe (key: string, after: string, deliver: (entries: StreamEntry[]) => void): () => void {
    const sub: Subscriber = { after, deliver }
    let w = watched.get(key)
    if (!w) {
      w = { cursor: after, subs: new Set() }
      watched.set(key, w)
      dirty = true
      interrupt()
    } else if (compareIds(after, w.cursor) < 0) {
      w.cursor = after
      dirty = true
      interrupt()
    }
    w.subs.add(sub)
    count++
    wake?.()
    let done = false
    return () => {
      if (done) return
      done = true
      count--
      w.subs.delete(sub)
      // The stream stays in the current read until it returns; it is dropped from the next one.
      if (w.subs.size === 0 && watched.get(key) === w) watched.delete(key)
    }
  }

  async function close () {
    if (closed) return
    closed = true
    wake?.()
    interrupt()
    await running
  }

  return { subscribe, get size () { return count }, close }
}
