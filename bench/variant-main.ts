/**
 * `trawl all` with the wiring of src/main.ts + src/services.ts, except for the changes named in
 * BENCH_VARIANT (comma-separated), so that a change proposed for src/ can be measured before
 * anyone makes it. Run by `npm run bench -- --variant=conns,autopipe`; never used by trawl itself.
 *
 * - `conns`: the worker's undici Agent may open WORKER_CONCURRENCY connections per origin
 *   (src/services.ts leaves createDispatcher at its default of 50).
 * - `autopipe`: the worker's store connection uses ioredis auto-pipelining, so the lanes' step
 *   scripts issued in one tick go to Redis in one write (measured: no gain, see batchstep).
 * - `batchstep`: the lanes' step scripts issued during one event-loop turn (e.g. every lane whose
 *   download ended in the same poll phase) go to Redis as one pipeline, flushed by setImmediate:
 *   one write and one read for many steps instead of one each. (ioredis' own auto-pipelining
 *   flushes on process.nextTick, which runs after every I/O callback, so it rarely batches lanes.)
 * - `fastbody`: models reading an identity-coded body without node:stream's pipeline(): for a
 *   source and one Writable, stream/promises' pipeline is swapped for a for-await loop that
 *   hands each chunk to the Writable's own write function. A measuring hack for this process
 *   only (it relies on the sink calling back synchronously, as fetch-page.ts's does); the real
 *   change belongs in src/fetcher/fetch-page.ts readBody().
 */
import { syncBuiltinESMExports } from 'node:module'
import type { Readable, Writable } from 'node:stream'
import streamPromises from 'node:stream/promises'
import type { Redis } from 'ioredis'
import { pino } from 'pino'
import { loadConfig } from '../src/config.js'
import { createDispatcher } from '../src/fetcher/agent.js'
import { createAddressGuard } from '../src/fetcher/guard.js'
import { createJobStore } from '../src/jobs/store.js'
import { loggerOptions } from '../src/logger.js'
import { closeRedis, createRedis } from '../src/redis.js'
import { startApi } from '../src/services.js'
import { createWorkers } from '../src/workers/create-workers.js'

const KNOWN = new Set(['conns', 'autopipe', 'batchstep', 'fastbody'])
const variant = new Set((process.env.BENCH_VARIANT ?? '').split(',').map((s) => s.trim()).filter(Boolean))
for (const v of variant) {
  if (!KNOWN.has(v)) {
    process.stderr.write(`variant-main: unknown BENCH_VARIANT ${v} (known: ${[...KNOWN].join(', ')})\n`)
    process.exit(2)
  }
}

if (variant.has('fastbody')) {
  const original = streamPromises.pipeline
  const fast = async (streams: unknown, options?: unknown): Promise<void> => {
    if (!Array.isArray(streams) || streams.length !== 2) return (original as (...a: unknown[]) => Promise<void>)(streams, options)
    const [source, sink] = streams as [Readable, Writable & { _write: Writable['_write'] }]
    try {
      for await (const chunk of source) {
        let done = false
        let error: Error | null | undefined
        const wrote = new Promise<void>((resolve, reject) => {
          sink._write(chunk as Buffer, 'buffer' as BufferEncoding, (err) => {
            done = true
            error = err
            if (err) reject(err)
            else resolve()
          })
        })
        if (!done) await wrote
        else wrote.catch(() => {})
        if (error) throw error
      }
    } catch (err) {
      source.destroy()
      throw err
    }
  }
  ;(streamPromises as { pipeline: unknown }).pipeline = fast
  syncBuiltinESMExports()
}

const config = loadConfig()
const logger = pino(loggerOptions(config))

const connection = createRedis(config, 'worker', 'worker')
const storeRedis = createRedis(config, 'worker', 'worker-store')
if (variant.has('autopipe')) storeRedis.options.enableAutoPipelining = true
const store = createJobStore(variant.has('batchstep') ? batchSteps(storeRedis) : storeRedis, { prefix: config.REDIS_PREFIX, ttlSeconds: config.JOB_TTL_SECONDS })
const dispatcher = createDispatcher({
  guard: createAddressGuard([...config.FETCH_ALLOW_CIDRS]),
  ...(variant.has('conns') ? { connections: config.WORKER_CONCURRENCY } : {})
})
const workers = createWorkers({ config, logger: logger.child({ role: 'worker' }), connection, store, dispatcher })
const api = await startApi(config, logger)
await api.app.listen({ port: config.PORT, host: config.HOST })
logger.warn({ variant: [...variant] }, 'variant-main: trawl all with bench variant')

/** The connection, except that trawlStep calls made in one event-loop turn share one pipeline. */
function batchSteps (redis: Redis): Redis {
  type Pending = { args: unknown[], resolve: (v: unknown) => void, reject: (e: unknown) => void }
  let pending: Pending[] = []
  const flush = (): void => {
    const batch = pending
    pending = []
    const pipeline = redis.pipeline()
    for (const p of batch) {
      (pipeline as unknown as Record<string, (...a: unknown[]) => void>).trawlStep?.(...p.args, (err: Error | null, value: unknown) => {
        if (err) p.reject(err)
        else p.resolve(value)
      })
    }
    pipeline.exec().catch(() => {})
  }
  return new Proxy(redis, {
    get (target, prop, receiver) {
      if (prop === 'trawlStep') {
        return (...args: unknown[]) => new Promise((resolve, reject) => {
          if (pending.length === 0) setImmediate(flush)
          pending.push({ args, resolve, reject })
        })
      }
      const value = Reflect.get(target, prop, receiver) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    }
  })
}

let closing = false
const shutdown = async (): Promise<void> => {
  if (closing) return
  closing = true
  await api.close()
  await workers.close(0)
  await dispatcher.close()
  await closeRedis(storeRedis)
  await closeRedis(connection)
  process.exit(0)
}
process.once('SIGTERM', () => { shutdown().catch(() => process.exit(1)) })
process.once('SIGINT', () => { shutdown().catch(() => process.exit(1)) })
