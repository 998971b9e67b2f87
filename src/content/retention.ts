import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { ContentStore } from './store.js'

/**
 * Durable retention of bodies: a sorted set in Redis, `<prefix>:content:expiry`, of job id ->
 * the time (ms) its bodies may go, and a sweep that deletes the bodies of the jobs that are due.
 * The set survives every process (it is in Redis, with the jobs), so bodies of a job whose
 * processes all died are still removed by whichever process sweeps next.
 *
 * Redis Cluster: the set and the sweep lock live in their own hash slots, apart from every
 * job's keys, so they must never be touched from a Lua script that touches a job's keys (a
 * script's keys must share one slot). Schedule with its own command, next to the job's script.
 */
export interface Retention {
  /**
   * Records (or moves) when a job's bodies may be deleted: call it when the job is accepted
   * and whenever its `expiresAt` changes (when it finishes). One ZADD; idempotent.
   */
  schedule (jobId: string, expiresAtMs: number): Promise<void>
  /** Drops a job from the schedule (after a purge has deleted its bodies). */
  forget (jobId: string): Promise<void>
  /**
   * Deletes the bodies of every job due by `now`, in pages of `batch`. A due job that
   * `expiresAtOf` says still lives later (its expiry moved on without a schedule) is
   * rescheduled instead; a job whose deletion fails stays in the set for the next sweep.
   * Safe to run in several processes at once (deletes are idempotent), but `startSweeper`
   * lets one process a period do it.
   */
  sweep (now?: number): Promise<SweepResult>
}

export interface SweepResult {
  /** Jobs whose bodies were deleted. */
  deleted: number
  /** Due jobs found alive, put back at their current expiry. */
  rescheduled: number
  /** Jobs whose deletion failed; they are tried again next sweep. */
  failed: number
}

export interface RetentionOptions {
  redis: Redis
  /** The service's key prefix (`REDIS_PREFIX`). */
  prefix: string
  store: ContentStore
  /**
   * The job's current `expiresAt` in ms, or null when the job is gone (its record expired or
   * was purged). The sweep asks before deleting, so a stale schedule never removes the bodies
   * of a job that still lives.
   */
  expiresAtOf: (jobId: string) => Promise<number | null>
  /** Jobs read from the set per page. @defaultValue 100 */
  batch?: number
  logger?: Logger
}

export function retentionKeys (prefix: string): { schedule: string, lock: string } {
  return { schedule: `${prefix}:content:expiry`, lock: `${prefix}:content:sweep-lock` }
}

export function createRetention (options: RetentionOptions): Retention {
  return new RedisRetention(options)
}

class RedisRetention implements Retention {
  readonly #keys: { schedule: string, lock: string }
  readonly #batch: number

  constructor (private readonly options: RetentionOptions) {
    this.#keys = retentionKeys(options.prefix)
    this.#batch = options.batch ?? 100
  }

  async schedule (jobId: string, expiresAtMs: number): Promise<void> {
    await this.options.redis.zadd(this.#keys.schedule, expiresAtMs, jobId)
  }

  async forget (jobId: string): Promise<void> {
    await this.options.redis.zrem(this.#keys.schedule, jobId)
  }

  async sweep (now = Date.now()): Promise<SweepResult> {
    const result: SweepResult = { deleted: 0, rescheduled: 0, failed: 0 }
    for (;;) {
      // Failed jobs stay in the set: skip past them rather than reading them again.
      const due = await this.options.redis.zrangebyscore(this.#keys.schedule, '-inf', now, 'LIMIT', result.failed, this.#batch)
      for (const jobId of due) {
        try {
          result[await this.#settle(jobId, now)]++
        } catch (err) {
          result.failed++
          this.options.logger?.warn({ err, jobId }, 'could not delete the bodies of an expired job; the next sweep tries again')
        }
      }
      if (due.length < this.#batch) return result
    }
  }

  async #settle (jobId: string, now: number): Promise<'deleted' | 'rescheduled'> {
    const expiresAt = await this.options.expiresAtOf(jobId)
    if (expiresAt !== null && expiresAt > now) {
      await this.options.redis.zadd(this.#keys.schedule, expiresAt, jobId)
      return 'rescheduled'
    }
    await this.options.store.deleteJob(jobId)
    await this.options.redis.zrem(this.#keys.schedule, jobId)
    return 'deleted'
  }
}

export interface SweeperOptions {
  redis: Redis
  prefix: string
  /**
   * Milliseconds between sweeps, service-wide: each process tries every period, and a Redis
   * lock of the same length lets only the first one sweep. Bodies go at most about this long
   * after their job expires. @defaultValue 600000 (10 minutes)
   */
  intervalMs?: number
  /** Milliseconds before the first try. @defaultValue a random delay under 5 s, so processes started together do not all race for the first lock */
  firstDelayMs?: number
  logger?: Logger
}

/**
 * Runs `retention.sweep` about once per `intervalMs` across every process that starts one (a
 * worker role does): the first sweep soon after start, so a service that was down catches up.
 * The lock (`SET NX PX`) is never released early; it is what spaces the sweeps, and a process
 * that dies mid-sweep leaves the rest to the next period. `close()` stops the timer and waits
 * for a sweep in progress; safe twice.
 */
export function startSweeper (retention: Retention, options: SweeperOptions): { close: () => Promise<void> } {
  const intervalMs = options.intervalMs ?? 600_000
  const lockKey = retentionKeys(options.prefix).lock
  const token = randomBytes(8).toString('hex')
  let running: Promise<void> | null = null
  let closed = false
  let timer: NodeJS.Timeout | null = null

  const tick = (): void => {
    running = (async () => {
      const got = await options.redis.set(lockKey, token, 'PX', intervalMs, 'NX')
      if (got !== 'OK') return
      const result = await retention.sweep()
      if (result.deleted + result.failed > 0) options.logger?.info(result, 'content retention sweep')
    })().catch((err: unknown) => {
      options.logger?.warn({ err }, 'content retention sweep failed')
    }).finally(() => {
      running = null
      if (!closed) arm(intervalMs)
    })
  }
  const arm = (ms: number): void => {
    timer = setTimeout(tick, ms)
    timer.unref()
  }
  arm(options.firstDelayMs ?? Math.floor(Math.random() * Math.min(5000, intervalMs)))

  return {
    async close () {
      closed = true
      if (timer !== null) clearTimeout(timer)
      await running
    }
  }
}
