import { setTimeout as delay } from 'node:timers/promises'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { Config } from '../config.js'
import { jobKeys } from '../jobs/keys.js'
import { meteredContent } from '../metrics/content.js'
import type { Metrics } from '../metrics/metrics.js'
import { contentStoreOptions } from './config.js'
import { createContentStore } from './index.js'
import { createRetention, startSweeper, type Retention } from './retention.js'
import type { ContentStore } from './store.js'

/**
 * The content store as a role uses it: the store the config names (or one shared by the roles
 * of `trawl all`), the retention schedule on the role's Redis connection and, in a worker
 * role, the sweeper that removes the bodies of expired jobs.
 */
export interface ContentService {
  store: ContentStore
  retention: Retention
  /**
   * Stops the sweeper (if any): no sweep starts after it, and one in progress is waited for
   * at most briefly. The store stays open. Safe twice.
   */
  stopSweeping(): Promise<void>
  /** Stops the sweeper, then closes the store unless it was given. Safe twice. */
  close(): Promise<void>
}

export interface ContentServiceOptions {
  config: Config
  /** The role's job-store connection: the retention set lives beside the jobs. */
  redis: Redis
  logger: Logger
  /** A store to share (the `all` role); it is not closed here. */
  store?: ContentStore | undefined
  /** Run the retention sweeper here (the worker role does). @defaultValue false */
  sweep?: boolean
  /** Where the store's operations are timed (metrics/content.ts). @defaultValue none */
  metrics?: Pick<Metrics, 'timeContentOp'> | undefined
}

/** Milliseconds a close waits for a retention sweep in progress. */
const SWEEP_CLOSE_MS = 2000

export function createContentService (options: ContentServiceOptions): ContentService {
  const { config, redis, logger } = options
  const own = options.store ?? createContentStore(contentStoreOptions(config))
  const store = options.metrics ? meteredContent(own, options.metrics) : own
  const prefix = config.REDIS_PREFIX
  const retention = createRetention({ redis, prefix, store, expiresAtOf: (jobId) => expiresAtOf(redis, prefix, jobId), logger })
  const sweeper = options.sweep === true ? startSweeper(retention, { redis, prefix, logger }) : null
  let stopping: Promise<void> | undefined
  let closing: Promise<void> | undefined
  const stopSweeping = () => (stopping ??= (async () => {
    // A sweep waiting on a Redis that is away would hold the close: it is given up on (its
    // lock spaces the next one; deletes are idempotent).
    if (sweeper === null) return
    const giveUp = new AbortController()
    await Promise.race([sweeper.close(), delay(SWEEP_CLOSE_MS, undefined, { ref: false, signal: giveUp.signal }).catch(() => {})])
    giveUp.abort()
  })())
  return {
    store,
    retention,
    stopSweeping,
    close: () => (closing ??= (async () => {
      await stopSweeping()
      if (options.store === undefined) await own.close()
    })())
  }
}

/** The job's `expiresAt` (ms) as its record says, or null when the job is gone. */
async function expiresAtOf (redis: Redis, prefix: string, jobId: string): Promise<number | null> {
  const raw = await redis.hget(jobKeys(prefix, jobId).meta, 'expiresAt')
  return raw === null ? null : Number(raw)
}
