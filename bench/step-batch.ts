/**
 * Issue 11 prototype: what claiming several URLs per step and reporting several results per call
 * would save, measured against the current step script in one process, with real 2 KB fetches
 * from the forked target (so lanes finish spread out, as in trawl) and no bodies in Redis (the
 * shape issue 8 leaves). No BullMQ: L lanes loop in this process.
 *
 *   node --import tsx bench/step-batch.ts [--runs=3] [--urls=10000] [--concurrency=50] [--k=1,4,8,16]
 *
 * Variants: `step` is the store's own step() (lanes/step.lua, one index per call, calls of one
 * event-loop turn in one pipeline); `many-k` is bench/variants/step-many.lua: a lane claims k
 * indexes, fetches them one after another, then reports the k results and claims k more in one
 * call (same pipelining). Reported: URLs/s, CPU per URL of this process and of redis-server.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { ulid } from 'ulid'
import { Agent, request } from 'undici'
import { jobKeys, keyList, tenantPendingKey, finishedChannel } from '../src/jobs/keys.js'
import { createJobStore } from '../src/jobs/redis-store.js'
import { DEFAULT_OPTIONS, type StoredResult } from '../src/jobs/schemas.js'
import { CpuMeter } from './lib/cpu.js'
import { cleanupAll, installExitHandlers, onCleanup } from './lib/procs.js'
import { REDIS_URL, removePrefix } from './lib/redis-clean.js'
import { median } from './lib/stats.js'
import { startTarget } from './lib/target.js'

const { values: args } = parseArgs({ options: { runs: { type: 'string' }, urls: { type: 'string' }, concurrency: { type: 'string' }, k: { type: 'string' } } })
const RUNS = Number(args.runs ?? 3)
const N = Number(args.urls ?? 10_000)
const C = Number(args.concurrency ?? 50)
const KS = (args.k ?? '1,4,8,16').split(',').map(Number)
const PREFIX = `bench-step-${randomBytes(3).toString('hex')}`
const TTL = 900_000
const LUA = readFileSync(new URL('./variants/step-many.lua', import.meta.url), 'utf8')

type Fetch = (url: string) => Promise<StoredResult>

function batcher (redis: Redis): (args: Array<string | number>) => Promise<Array<number | string>> {
  let queued: Array<{ a: Array<string | number>, resolve: (r: Array<number | string>) => void, reject: (e: unknown) => void }> = []
  const flush = (): void => {
    const batch = queued
    queued = []
    const p = redis.pipeline()
    for (const { a } of batch) (p as unknown as { stepMany: (...x: Array<string | number>) => void }).stepMany(...a)
    p.exec().then((replies) => batch.forEach((b, i) => {
      const [err, r] = replies?.[i] ?? [new Error('no reply'), null]
      if (err) b.reject(err)
      else b.resolve(r as Array<number | string>)
    }), (err: unknown) => { for (const b of batch) b.reject(err) })
  }
  return (a) => new Promise((resolve, reject) => { if (queued.push({ a, resolve, reject }) === 1) setImmediate(flush) })
}

async function runMany (redis: Redis, id: string, k: number, fetch: Fetch): Promise<void> {
  const k0 = jobKeys(PREFIX, id)
  // step-many.lua predates bodies leaving Redis: it still takes a content key (never written here).
  const keys = [k0.meta, k0.urls, k0.results, k0.meta.replace(/:meta$/, ':content'), k0.held, k0.events, tenantPendingKey(PREFIX, 'open')]
  const call = batcher(redis)
  const lane = async (n: number): Promise<void> => {
    let reports: Array<string | number> = []
    let resume = '1'
    for (;;) {
      const reply = await call([...keys, n, Date.now(), TTL, finishedChannel(PREFIX), k, resume, ...reports])
      resume = '0'
      reports = []
      if (reply[0] !== 1) return
      for (let i = 1; i < reply.length; i += 2) {
        const r = await fetch(String(reply[i + 1]))
        reports.push(Number(reply[i]), r.state, r.bytes, JSON.stringify(r))
      }
    }
  }
  await Promise.all(Array.from({ length: C }, (_, n) => lane(n)))
}

async function runStep (store: ReturnType<typeof createJobStore>, id: string, fetch: Fetch): Promise<void> {
  const lane = async (n: number): Promise<void> => {
    let finished: { index: number, result: StoredResult } | null = null
    for (;;) {
      const reply = await store.step(id, 'open', n, finished, true)
      if (reply.kind !== 'fetch') return
      finished = { index: reply.index, result: await fetch(reply.url) }
    }
  }
  await Promise.all(Array.from({ length: C }, (_, n) => lane(n)))
}

async function main (): Promise<void> {
  installExitHandlers()
  const redis = new Redis(REDIS_URL)
  redis.defineCommand('stepMany', { numberOfKeys: 7, lua: LUA })
  onCleanup(async () => { await removePrefix(redis, PREFIX); redis.disconnect() })
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1] ?? NaN)
  const store = createJobStore(redis, { prefix: PREFIX, ttlSeconds: TTL / 1000 })
  const target = await startTarget()
  onCleanup(target.close)
  const agent = new Agent({ connections: C })
  const fetch: Fetch = async (url) => {
    const t0 = performance.now()
    const res = await request(url, { dispatcher: agent })
    let bytes = 0
    for await (const chunk of res.body) bytes += (chunk as Buffer).length
    return { state: 'succeeded', status: res.statusCode, finalUrl: url, contentType: 'text/html', bytes, durationMs: Math.round(performance.now() - t0), attempts: 1, error: null, hasContent: false, sha256: null }
  }
  const urls = Array.from({ length: N }, (_, i) => target.url(2000, 0, i))
  const variants = ['step', ...KS.map((k) => `many-${k}`)]
  const got = new Map<string, Array<{ ms: number, cpu: number, redis: number }>>(variants.map((v) => [v, []]))
  for (let round = -1; round < RUNS; round++) {
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + Math.max(round, 0)) % variants.length] as string
      const id = ulid()
      await store.create({ id, tenant: 'open', urls, options: { ...DEFAULT_OPTIONS, concurrency: C, keepContent: false }, now: Date.now() })
      const meter = new CpuMeter({ redis: redisPid })
      meter.start()
      const t0 = performance.now()
      if (v === 'step') await runStep(store, id, fetch)
      else await runMany(redis, id, Number(v.slice(5)), fetch)
      const ms = performance.now() - t0
      const cpu = meter.stop()
      const meta = await redis.hmget(jobKeys(PREFIX, id).meta, 'state', 'succeeded')
      if (meta[0] !== 'completed' || Number(meta[1]) !== N) throw new Error(`${v}: job ended ${meta.join(' ')}`)
      await redis.unlink(...keyList(jobKeys(PREFIX, id)))
      if (round < 0) continue
      got.get(v)?.push({ ms, cpu: ((cpu.bench ?? NaN) * 1000) / N, redis: ((cpu.redis ?? NaN) * 1000) / N })
      process.stdout.write(`  ${round + 1}/${RUNS} ${v}: ${ms.toFixed(0)} ms, ${(((cpu.bench ?? NaN) * 1000) / N).toFixed(0)} + ${(((cpu.redis ?? NaN) * 1000) / N).toFixed(0)} µs/URL\n`)
    }
  }
  await agent.close()
  process.stdout.write(`\n${N} URLs x 2 KB, ${C} lanes, medians of ${RUNS}\nvariant    time      URLs/s   CPU/URL (this process)  CPU/URL (redis)\n`)
  for (const [v, rs] of got) {
    const ms = median(rs.map((r) => r.ms))
    process.stdout.write(`${v.padEnd(10)} ${ms.toFixed(0).padStart(6)} ms  ${Math.round((N * 1000) / ms).toString().padStart(7)}  ${median(rs.map((r) => r.cpu)).toFixed(0).padStart(6)} µs              ${median(rs.map((r) => r.redis)).toFixed(0).padStart(5)} µs\n`)
  }
}

main().then(() => cleanupAll(), async (err: unknown) => {
  process.stderr.write(`step-batch failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
  await cleanupAll()
})
