import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { Test } from 'tap'

/** The Redis the tests use: REDIS_URL, or the one every machine of this project runs on 6379. */
export const TEST_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * A key prefix of the test's own, so test files can run side by side on one Redis; every key
 * under it is removed when the test ends.
 */
export function testPrefix (t: Test, name = 'test'): string {
  const prefix = `trawl-${name}-${randomBytes(4).toString('hex')}`
  t.teardown(() => removePrefix(prefix))
  return prefix
}

export async function removePrefix (prefix: string): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await redis.connect()
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await redis.unlink(...keys)
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}

/** One line of CLIENT LIST, as fields (`id`, `name`, `cmd`, `flags`, ...). */
export type ClientInfo = Record<string, string>

/** The connections to Redis whose CLIENT SETNAME is `name` (ioredis' `connectionName`). */
export async function clientsNamed (redis: Redis, name: string): Promise<ClientInfo[]> {
  const list = String(await redis.client('LIST'))
  return list.split('\n').filter((line) => line.trim() !== '')
    .map((line) => Object.fromEntries(line.trim().split(' ').map((kv) => {
      const eq = kv.indexOf('=')
      return [kv.slice(0, eq), kv.slice(eq + 1)]
    })) as ClientInfo)
    .filter((c) => c.name === name)
}
