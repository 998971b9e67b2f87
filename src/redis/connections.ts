import { Redis, type RedisOptions } from 'ioredis'
import type { Config } from '../config.js'

/**
 * One role per connection (BullMQ's production advice):
 * - `producer`: API commands; fails fast while Redis is away, so requests answer 503 at once
 *   instead of queueing behind a dead connection.
 * - `worker`: BullMQ workers and lanes; waits out outages (`maxRetriesPerRequest: null`).
 * - `subscriber`: pub/sub and blocking reads; reconnects by itself (its owner resubscribes).
 */
export type RedisRole = 'producer' | 'worker' | 'subscriber'

export function createRedis (config: Pick<Config, 'REDIS_URL'>, role: RedisRole, name: string = role): Redis {
  const common: RedisOptions = {
    connectionName: `trawl:${name}`,
    connectTimeout: 2000,
    // Reconnect quickly at first, then every 2 s at most, forever: a Redis restart heals itself.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    lazyConnect: false
  }
  const byRole: Record<RedisRole, RedisOptions> = {
    producer: { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2000 },
    worker: { ...common, maxRetriesPerRequest: null, enableReadyCheck: false },
    subscriber: { ...common, maxRetriesPerRequest: null, autoResubscribe: false }
  }
  const redis = new Redis(config.REDIS_URL, byRole[role])
  // Errors surface on commands and in readiness; without a listener ioredis would print them.
  redis.on('error', () => {})
  return redis
}

/** Closes a connection once, quickly, whatever its state. */
export async function closeRedis (redis: Redis): Promise<void> {
  if (redis.status === 'end') return
  // QUIT would wait for a connection that may never come back; only a ready one is asked.
  if (redis.status !== 'ready') {
    redis.disconnect()
    return
  }
  const timer = setTimeout(() => redis.disconnect(), 1000)
  try {
    await redis.quit()
  } catch {
    redis.disconnect()
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Resolves once the connection is ready, or after `ms` (Redis may be down at boot: the process
 * still starts, answers 503 and /readyz says why, and the connection keeps retrying).
 */
export async function untilReady (redis: Redis, ms = 2000): Promise<boolean> {
  if (redis.status === 'ready') return true
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer)
      redis.off('ready', onReady)
      resolve(ok)
    }
    const onReady = () => done(true)
    const timer = setTimeout(() => done(false), ms)
    redis.once('ready', onReady)
  })
}
