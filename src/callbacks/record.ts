import type { Redis } from 'ioredis'
import { jobKeys } from '../jobs/keys.js'

/** What the job record shows of its callback after an attempt. */
export interface CallbackRecord {
  state: 'pending' | 'delivered' | 'failed'
  /** Attempts made so far, counting from 1. */
  attempts: number
  /** HTTP status of the last attempt; null when none came back. */
  lastStatus: number | null
  lastError: string | null
}

/**
 * The callback's bookkeeping in the job's keys: the body sent (the job's `callback` key) and the
 * `cb*` fields of its meta hash. The job's own state is never changed here.
 */
export interface CallbackRecords {
  /**
   * The body to send: the first call stores `body` (SET NX, with the job TTL); later calls
   * (retries) get the stored bytes, so every attempt signs and sends the same body. One MULTI.
   */
  callbackBody(jobId: string, body: string): Promise<string>
  /**
   * Writes an attempt into the job's meta hash, only while the job exists (a late attempt must
   * not recreate an expired job). Two commands, not atomic: a job that expires between the
   * check and the write would leave a meta hash of cb* fields only, without a TTL.
   */
  recordCallback(jobId: string, r: CallbackRecord): Promise<void>
}

export function createCallbackRecords (redis: Redis, opts: { prefix: string, ttlSeconds: number }): CallbackRecords {
  const ttlMs = opts.ttlSeconds * 1000
  const keysOf = (id: string) => jobKeys(opts.prefix, id)
  return {
    async callbackBody (id, body) {
      const key = keysOf(id).callbackBody
      const [[setErr], [err, fixed]] = await redis.multi().set(key, body, 'PX', ttlMs, 'NX').get(key).exec() as [[Error | null, unknown], [Error | null, string | null]]
      if (setErr ?? err) throw (setErr ?? err)
      return fixed ?? body
    },
    async recordCallback (id, r) {
      const k = keysOf(id)
      if (await redis.exists(k.meta) === 0) return
      await redis.hset(k.meta, { cbState: r.state, cbAttempts: r.attempts, cbLastStatus: r.lastStatus ?? '', cbLastError: r.lastError ?? '' })
    }
  }
}
