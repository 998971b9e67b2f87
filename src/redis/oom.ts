import type { Worker } from 'bullmq'
import type { Redis } from 'ioredis'
import { runScript } from './scripts.js'

/**
 * A Redis at its `maxmemory` under `noeviction` (what BullMQ asks for) refuses every command
 * that could grow memory with `OOM command not allowed when used memory > 'maxmemory'`. A script
 * is refused before its first such write, never half way (Redis checks only while the script
 * has written nothing), so a refused step changed nothing and can simply be sent again.
 * Here: lanes wait that out instead of failing their job, and keep their BullMQ locks meanwhile.
 */

/** True for Redis' answer to a write while it is at maxmemory. */
export function isRedisOom (err: unknown): boolean {
  return err instanceof Error && /\bOOM command not allowed\b/.test(err.message)
}

/** Thrown by a call that was waiting for memory when the worker began to shut down. */
export class RedisFullError extends Error {
  constructor (options?: { cause?: unknown }) {
    super('Redis is at its maxmemory; gave up waiting because the worker is shutting down', options)
    this.name = 'RedisFullError'
  }
}

export interface OomWaitOptions {
  /** True once waiting should end (the worker shuts down): the call then throws RedisFullError. */
  stopping(): boolean
  /** Told when the first call starts waiting and when the last one got through. */
  onFull?(err: Error): void
  onRoom?(waitedMs: number): void
  /** First pause before a retry, in ms; each next one doubles. @defaultValue 50 */
  baseMs?: number
  /** Longest pause between retries, in ms. @defaultValue 1000 */
  maxMs?: number
}

/** Wraps calls so that an OOM answer is retried with capped backoff until it goes through. */
export function createOomWait (opts: OomWaitOptions) {
  const baseMs = opts.baseMs ?? 50
  const maxMs = opts.maxMs ?? 1000
  let waiting = 0
  let since = 0
  async function retry<R> (call: () => Promise<R>, first: Error): Promise<R> {
    if (waiting++ === 0) {
      since = Date.now()
      opts.onFull?.(first)
    }
    try {
      for (let n = 0; ; n++) {
        // Half fixed, half jitter: lanes refused together do not all come back at once.
        const pause = Math.min(maxMs, baseMs * 2 ** n)
        await new Promise((resolve) => setTimeout(resolve, pause / 2 + Math.random() * pause / 2))
        if (opts.stopping()) throw new RedisFullError({ cause: first })
        try {
          return await call()
        } catch (err) {
          if (!isRedisOom(err)) throw err
        }
      }
    } finally {
      if (--waiting === 0) opts.onRoom?.(Date.now() - since)
    }
  }
  return function wrap<A extends unknown[], R> (fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
    return async (...args) => {
      try {
        return await fn(...args)
      } catch (err) {
        if (!isRedisOom(err)) throw err
        return await retry(() => fn(...args), err as Error)
      }
    }
  }
}

/**
 * BullMQ renews its locks with SET, which a full Redis refuses; a lane waiting for memory would
 * then lose its lock and, once memory frees, be taken for stalled and run twice. When a renewal
 * is refused for OOM, the locks are extended instead by redis/keep-locks.lua (GET, PEXPIRE,
 * SREM: none of them needs memory), with BullMQ's own rules: only locks still holding our token.
 */
/** `redis`: a connection to the worker's Redis (its own BullMQ connection will do). */
export function keepLocksThroughOom (worker: Worker, redis: Redis): void {
  const extend = worker.extendJobLocks.bind(worker)
  worker.extendJobLocks = async (jobIds, tokens, duration) => {
    try {
      return await extend(jobIds, tokens, duration)
    } catch (err) {
      if (!isRedisOom(err)) throw err
      return await runScript(redis, 'trawlKeepLocks', { stalled: worker.toKey('stalled') }, {
        base: worker.toKey(''),
        ids: JSON.stringify(jobIds),
        tokens: JSON.stringify(tokens),
        ttl: duration
      })
    }
  }
}
