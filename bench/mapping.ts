/**
 * The design question "how should BullMQ jobs map onto URLs?", measured on a minimal pipeline:
 * 10,000 URLs, 50 at a time, one process (producer and Worker), its own REDIS_PREFIX.
 *
 *   node --import tsx bench/mapping.ts [--runs=3] [--quick] [--urls=10000] [--concurrency=50]
 *
 * Mappings:
 * - per-url:     one BullMQ job per URL (addBulk of N jobs, removeOnComplete)
 * - chunk-100:   one BullMQ job per 100 URLs, fetched one after another inside the job
 * - lanes:       trawl's design, minimal: the URLs in a Redis list, min(c, N) BullMQ jobs, each
 *                looping "report the last result and claim the next index" (one small Lua script)
 * - lanes-trawl: the same with trawl's own code: store.create, runLane and the real step
 *                script (src/jobs/redis-store.ts, src/lanes/lane.ts)
 * - lanes-trawl+ap: lanes-trawl on a connection with ioredis enableAutoPipelining
 *
 * Processors: `noop` (no I/O but the mapping's own Redis work) and `fetch` (GET of a 2 KB page
 * from a forked local target server, body read). Every mapping writes one small result per URL
 * to a Redis hash. Reported: enqueue time (addBulk, plus the URL list for lanes), time from
 * enqueue to the last BullMQ job completed, URLs/s, CPU per URL of this process and of
 * redis-server. All keys under the prefix are removed at the end (SCAN + UNLINK).
 */
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { Queue, Worker, type Job } from 'bullmq'
import { Redis, type Result } from 'ioredis'
import { ulid } from 'ulid'
import { Agent, request } from 'undici'
import type { PageResult } from '../src/fetcher/fetch-page.js'
import { jobKeys, keyList } from '../src/jobs/keys.js'
import { DEFAULT_OPTIONS, type LaneData } from '../src/jobs/schemas.js'
import { createJobStore } from '../src/jobs/redis-store.js'
import { runLane } from '../src/lanes/lane.js'
import { CpuMeter } from './lib/cpu.js'
import { cleanupAll, installExitHandlers, onCleanup } from './lib/procs.js'
import { REDIS_URL, removePrefix } from './lib/redis-clean.js'
import { median } from './lib/stats.js'
import { startTarget, type Target } from './lib/target.js'

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string' },
    quick: { type: 'boolean', default: false },
    urls: { type: 'string' },
    concurrency: { type: 'string' },
    only: { type: 'string' }
  }
})
const quick = args.quick === true
const RUNS = Number(args.runs ?? (quick ? 1 : 3))
const N = Number(args.urls ?? (quick ? 2000 : 10_000))
const C = Number(args.concurrency ?? 50)
const CHUNK = 100
const PREFIX = `bench-map-${randomBytes(3).toString('hex')}`

type Processor = 'noop' | 'fetch'
type Mapping = 'per-url' | 'chunk-100' | 'lanes' | 'lanes-trawl' | 'lanes-trawl+ap'
const MAPPINGS: Mapping[] = ['per-url', 'chunk-100', 'lanes', 'lanes-trawl', 'lanes-trawl+ap']

interface RunResult {
  enqueueMs: number
  totalMs: number
  cpuUs: number
  redisCpuUs: number
}

const log = (line: string): void => { process.stdout.write(line + '\n') }

function connection (name: string): Redis {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null, connectionName: `trawl-bench-map:${name}` })
  redis.on('error', () => {})
  return redis
}

/** The result every mapping stores per URL, about the size of trawl's. */
function resultJson (status: number, bytes: number): string {
  return JSON.stringify({ state: 'succeeded', status, finalUrl: null, contentType: 'text/html', bytes, durationMs: 1, attempts: 1, error: null, hasContent: false })
}

// Minimal lane step: KEYS next, urls, results; ARGV index (-1: none), result.
const LANE_STEP = `
if tonumber(ARGV[1]) >= 0 then redis.call('HSET', KEYS[3], ARGV[1], ARGV[2]) end
local n = redis.call('INCR', KEYS[1]) - 1
if n >= redis.call('LLEN', KEYS[2]) then return {-1} end
return {n, redis.call('LINDEX', KEYS[2], n)}
`

declare module 'ioredis' {
  interface RedisCommander<Context> {
    benchLaneStep(next: string, urls: string, results: string, index: string, result: string): Result<[number, string?], Context>
  }
}

async function main (): Promise<void> {
  installExitHandlers()
  const admin = connection('admin')
  onCleanup(async () => {
    const removed = await removePrefix(admin, PREFIX)
    log(`\ncleanup: removed ${removed} Redis keys under ${PREFIX}`)
    admin.disconnect()
  })
  const redisPid = Number(/process_id:(\d+)/.exec(await admin.info('server'))?.[1] ?? NaN)
  const target = await startTarget()
  onCleanup(target.close)
  const agent = new Agent({ connections: C, keepAliveTimeout: 60_000 })
  onCleanup(() => agent.close())
  const producer = connection('producer')
  const workerConn = connection('worker')
  const store = connection('store')
  const storeAp = connection('store-ap')
  storeAp.options.enableAutoPipelining = true
  onCleanup(async () => { for (const r of [producer, workerConn, store, storeAp]) r.disconnect() })
  store.defineCommand('benchLaneStep', { numberOfKeys: 3, lua: LANE_STEP })
  const trawlStore = createJobStore(store, { prefix: PREFIX, ttlSeconds: 900 })
  const trawlStoreAp = createJobStore(storeAp, { prefix: PREFIX, ttlSeconds: 900 })

  async function fetchOne (url: string): Promise<{ status: number, bytes: number }> {
    const res = await request(url, { dispatcher: agent })
    let bytes = 0
    for await (const chunk of res.body) bytes += (chunk as Buffer).length
    return { status: res.statusCode, bytes }
  }
  const work = (processor: Processor, url: string): Promise<{ status: number, bytes: number }> | { status: number, bytes: number } =>
    processor === 'fetch' ? fetchOne(url) : { status: 200, bytes: 0 }

  let runNo = 0
  async function runOnce (mapping: Mapping, processor: Processor, urls: readonly string[]): Promise<RunResult> {
    const name = `map-${runNo++}`
    const results = `${PREFIX}:${name}:results`
    const queue = new Queue(name, { connection: producer, prefix: PREFIX })
    let jobs = 0
    let completed = 0
    let resolveDone: () => void = () => {}
    const done = new Promise<void>((resolve) => { resolveDone = resolve })

    const processors: Record<Mapping, (job: Job) => Promise<unknown>> = {
      'per-url': async (job) => {
        const { url, index } = job.data as { url: string, index: number }
        const r = await work(processor, url)
        await store.hset(results, String(index), resultJson(r.status, r.bytes))
      },
      'chunk-100': async (job) => {
        const { urls: chunk, offset } = job.data as { urls: string[], offset: number }
        for (let i = 0; i < chunk.length; i++) {
          const r = await work(processor, chunk[i] as string)
          await store.hset(results, String(offset + i), resultJson(r.status, r.bytes))
        }
      },
      lanes: async () => {
        let index = -1
        let result = ''
        for (;;) {
          const reply = await store.benchLaneStep(`${PREFIX}:${name}:next`, `${PREFIX}:${name}:urls`, results, String(index), result)
          if (reply[0] < 0) return
          index = reply[0]
          const r = await work(processor, reply[1] as string)
          result = resultJson(r.status, r.bytes)
        }
      },
      'lanes-trawl': (job) => trawlLane(job, trawlStore),
      'lanes-trawl+ap': (job) => trawlLane(job, trawlStoreAp)
    }

    async function trawlLane (job: Job, s: typeof trawlStore): Promise<unknown> {
      return runLane(job.data as LaneData, {
        step: s.step,
        laneContext: s.laneContext,
        fetch: async (url): Promise<PageResult> => {
          const r = await work(processor, url)
          return { ok: true, status: r.status, finalUrl: url, contentType: 'text/html', bytes: r.bytes, sha256: null, error: null, attempts: 1, durationMs: 1 }
        },
        sliceMs: 600_000,
        stopping: () => false
      }, new AbortController().signal)
    }

    const worker = new Worker(name, processors[mapping], { connection: workerConn, prefix: PREFIX, concurrency: C, autorun: false })
    worker.on('completed', () => { if (++completed === jobs) resolveDone() })
    worker.on('failed', (_job, err) => { log(`  ! ${mapping} job failed: ${err.message}`) })
    await queue.waitUntilReady()
    await worker.waitUntilReady()

    const meter = new CpuMeter({ redis: redisPid })
    meter.start()
    const t0 = performance.now()
    const opts = { removeOnComplete: true, removeOnFail: true }
    const jobId = `j_${ulid()}`
    if (mapping === 'per-url') {
      jobs = urls.length
      await queue.addBulk(urls.map((url, index) => ({ name: 'url', data: { url, index }, opts })))
    } else if (mapping === 'chunk-100') {
      const chunks = []
      for (let offset = 0; offset < urls.length; offset += CHUNK) chunks.push({ name: 'chunk', data: { urls: urls.slice(offset, offset + CHUNK), offset }, opts })
      jobs = chunks.length
      await queue.addBulk(chunks)
    } else if (mapping === 'lanes') {
      const tx = store.multi()
      for (let i = 0; i < urls.length; i += 1000) tx.rpush(`${PREFIX}:${name}:urls`, ...urls.slice(i, i + 1000))
      tx.set(`${PREFIX}:${name}:next`, 0)
      await tx.exec()
      jobs = Math.min(C, urls.length)
      await queue.addBulk(Array.from({ length: jobs }, (_, lane) => ({ name: 'lane', data: { lane }, opts })))
    } else {
      await trawlStore.create({ id: jobId, tenant: 'bench', urls: [...urls], options: { ...DEFAULT_OPTIONS, concurrency: C, keepContent: false }, now: Date.now() })
      jobs = Math.min(C, urls.length)
      await queue.addBulk(Array.from({ length: jobs }, (_, lane) => ({ name: 'lane', data: { jobId, lane }, opts })))
    }
    const enqueueMs = performance.now() - t0
    worker.run().catch((err: unknown) => log(`  ! worker: ${String(err)}`))
    await done
    const totalMs = performance.now() - t0
    const cpu = meter.stop()
    // trawl's store keeps its results under the job's own keys.
    const trawlKeys = jobKeys(PREFIX, jobId)
    const stored = await admin.hlen(mapping.startsWith('lanes-trawl') ? trawlKeys.results : results)
    if (stored !== urls.length) log(`  ! ${mapping}: ${stored} results stored, expected ${urls.length}`)
    await worker.close()
    await queue.obliterate({ force: true }).catch(() => {})
    await queue.close()
    await admin.unlink(results, `${PREFIX}:${name}:next`, `${PREFIX}:${name}:urls`, ...keyList(trawlKeys))
    return { enqueueMs, totalMs, cpuUs: ((cpu.bench ?? NaN) * 1000) / urls.length, redisCpuUs: ((cpu.redis ?? NaN) * 1000) / urls.length }
  }

  const mappings = args.only === undefined ? MAPPINGS : MAPPINGS.filter((m) => args.only?.split(',').includes(m))
  log(`mapping bench: node ${process.version}, ${N.toLocaleString('en-US')} URLs, concurrency ${C}, ${RUNS} runs each (rotating order), REDIS_PREFIX=${PREFIX}, target ${target.origin}`)
  const table: string[][] = [['processor', 'mapping', 'BullMQ jobs', 'enqueue', 'total', 'URLs/s', 'CPU/URL (bench)', 'CPU/URL (redis)']]
  for (const processor of ['noop', 'fetch'] as Processor[]) {
    const urls = Array.from({ length: N }, (_, i) => (target as Target).url(2000, 0, i))
    // Warm-up: every mapping once on a small batch.
    for (const m of mappings) await runOnce(m, processor, urls.slice(0, 500))
    const res = new Map<Mapping, RunResult[]>()
    for (let run = 0; run < RUNS; run++) {
      for (let i = 0; i < mappings.length; i++) {
        const m = mappings[(i + run) % mappings.length] as Mapping
        const r = await runOnce(m, processor, urls)
        log(`  ${processor} ${m} run ${run + 1}: enqueue ${r.enqueueMs.toFixed(0)} ms, total ${r.totalMs.toFixed(0)} ms, ${Math.round((N * 1000) / r.totalMs)} URLs/s`)
        res.set(m, [...(res.get(m) ?? []), r])
      }
    }
    for (const m of mappings) {
      const rs = res.get(m) ?? []
      const total = median(rs.map((r) => r.totalMs))
      table.push([
        processor,
        m,
        String(m === 'per-url' ? N : m === 'chunk-100' ? Math.ceil(N / CHUNK) : Math.min(C, N)),
        `${median(rs.map((r) => r.enqueueMs)).toFixed(0)} ms`,
        `${total.toFixed(0)} ms`,
        `${Math.round((N * 1000) / total).toLocaleString('en-US')}/s`,
        `${median(rs.map((r) => r.cpuUs)).toFixed(0)} µs`,
        `${median(rs.map((r) => r.redisCpuUs)).toFixed(0)} µs`
      ])
    }
  }
  log('\nMedians')
  const widths = table[0]?.map((_, c) => Math.max(...table.map((row) => (row[c] ?? '').length))) ?? []
  for (const row of table) log(row.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd())
}

main().then(() => cleanupAll(), async (err: unknown) => {
  process.stderr.write(`mapping bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
  await cleanupAll()
})
