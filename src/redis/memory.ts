import type { Redis } from 'ioredis'

/**
 * How full Redis is, from `INFO memory`. BullMQ asks for `maxmemory-policy noeviction`, so a
 * Redis at its `maxmemory` refuses writes (`OOM command not allowed ...`): the API stops
 * accepting jobs a little before that (NEAR_FULL_RATIO) instead of taking work it cannot carry.
 */
export interface MemoryState {
  /** `used_memory`, in bytes. */
  used: number
  /** `maxmemory`, in bytes; 0 means no limit (then never near full). */
  max: number
  /** used / max, 0 without a limit. */
  ratio: number
  /** True from NEAR_FULL_RATIO of maxmemory on. */
  nearFull: boolean
}

export interface RedisMemory {
  /**
   * The state, read at most once per `cacheMs` for all callers of this connection together
   * (callers arriving while a read is in flight share it). Rejects as the INFO command does
   * when Redis does not answer; a failed read is not cached.
   */
  state(): Promise<MemoryState>
}

/** The share of maxmemory from which Redis counts as near full (contract: 90 %). */
export const NEAR_FULL_RATIO = 0.9

export interface RedisMemoryOptions {
  /**
   * Milliseconds a reading is reused. @defaultValue 1000
   */
  cacheMs?: number
}

/** Parses the `INFO memory` section. */
export function parseMemoryInfo (info: string): MemoryState {
  const field = (name: string): number => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0)
  const used = field('used_memory')
  const max = field('maxmemory')
  const ratio = max > 0 ? used / max : 0
  return { used, max, ratio, nearFull: max > 0 && ratio >= NEAR_FULL_RATIO }
}

const shared = new WeakMap<Redis, RedisMemory>()

/** The memory gauge of a connection: one per connection, so its cache is shared by every caller. */
export function redisMemory (redis: Redis, opts: RedisMemoryOptions = {}): RedisMemory {
  const existing = shared.get(redis)
  if (existing !== undefined) return existing
  const cacheMs = opts.cacheMs ?? 1000
  let last: { at: number, value: Promise<MemoryState> } | null = null
  const gauge: RedisMemory = {
    state () {
      const now = Date.now()
      if (last !== null && now - last.at < cacheMs) return last.value
      const value = redis.info('memory').then(parseMemoryInfo)
      const entry = { at: now, value }
      last = entry
      value.catch(() => { if (last === entry) last = null })
      return value
    }
  }
  shared.set(redis, gauge)
  return gauge
}

/** A `Retry-After` in seconds for an answer refused because Redis is near full. */
export const NEAR_FULL_RETRY_AFTER_S = 5

/** What the API says when it refuses work because Redis is near full. */
export function nearFullDetail (m: MemoryState): string {
  const pct = Math.floor(m.ratio * 100)
  return `Redis is near full (${pct} % of its maxmemory used); trawl takes no new jobs until memory frees. Retry later.`
}
