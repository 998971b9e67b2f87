import { Redis } from 'ioredis'

export const REDIS_URL = 'redis://127.0.0.1:6379'

/** Removes every key under `prefix:` (SCAN + UNLINK); returns how many. */
export async function removePrefix (redis: Redis, prefix: string): Promise<number> {
  if (!/^bench-[A-Za-z0-9_.-]+$/.test(prefix)) throw new Error(`refusing to clean a non-bench prefix: ${prefix}`)
  let cursor = '0'
  let removed = 0
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) removed += await redis.unlink(...keys)
  } while (cursor !== '0')
  return removed
}

export function benchRedis (): Redis {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2, connectTimeout: 2000, connectionName: 'trawl-bench' })
  redis.on('error', () => {})
  return redis
}
