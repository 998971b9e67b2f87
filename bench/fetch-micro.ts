/**
 * Where a URL's CPU goes in the fetch path, without Redis or BullMQ: the same URLs fetched in
 * this process by several loops, rounds in rotating order, medians of wall time and of this
 * process's CPU per URL.
 *
 *   node --import tsx bench/fetch-micro.ts [--rounds=5] [--quick]
 *
 * - bare:           plain undici Agent, request() + for-await over the body
 * - bare+guard:     the same loop over trawl's createDispatcher (address guard, User-Agent)
 * - fetchPage:      trawl's fetchPage() over createDispatcher, as a lane calls it
 * - deadline+pipe:  request() with fetchPage's AbortController/deadline, body through
 *                   stream/promises pipeline(..., { signal }) into a Writable (fetchPage's path)
 * - deadline+read:  the same, body read with for-await and no pipeline (the proposed fast path)
 * - fetchPage+fs:   fetchPage with each body kept in trawl's fs content store (as a lane keeps it)
 * - bare+file:      the bare loop writing each body to a file with open, write, close and rename
 *                   (the file system's own cost, for reference)
 *
 * Bodies go under $TMPDIR (a fresh folder per run, removed at the end).
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { request, type Dispatcher } from 'undici'
import { createFsContentStore } from '../src/content/fs-store.js'
import { createDispatcher } from '../src/fetcher/agent.js'
import { fetchPage } from '../src/fetcher/fetch-page.js'
import { createAddressGuard } from '../src/fetcher/guard.js'
import { bareAgent } from './lib/bare.js'
import { cleanupAll, installExitHandlers, onCleanup } from './lib/procs.js'
import { median } from './lib/stats.js'
import { startTarget } from './lib/target.js'

const { values: args } = parseArgs({ options: { rounds: { type: 'string' }, quick: { type: 'boolean', default: false } } })
const quick = args.quick === true
const rounds = Number(args.rounds ?? (quick ? 1 : 5))
const CONCURRENCY = 50
const TIMEOUT_MS = 30_000

/** One download; `lane` is the loop worker's own long-lived signal, as a lane's BullMQ signal is. */
type FetchOne = (url: string, lane: AbortSignal) => Promise<number>

async function readAll (body: Dispatcher.ResponseData['body']): Promise<number> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const chunk of body) {
    n += (chunk as Buffer).length
    chunks.push(chunk as Buffer)
  }
  Buffer.concat(chunks, n)
  return n
}

/** fetchPage's per-attempt set-up: one controller for the caller's signal and the deadline. */
async function withDeadline<T> (outer: AbortSignal, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(new Error('deadline')), TIMEOUT_MS)
  const onAbort = (): void => ac.abort(outer.reason)
  outer.addEventListener('abort', onAbort, { once: true })
  try {
    return await fn(ac.signal)
  } finally {
    clearTimeout(timer)
    outer.removeEventListener('abort', onAbort)
  }
}

async function loop (urls: readonly string[], fetchOne: FetchOne): Promise<{ ms: number, cpuUs: number, bytes: number }> {
  let next = 0
  let bytes = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    const lane = new AbortController().signal
    while (next < urls.length) bytes += await fetchOne(urls[next++] as string, lane)
  }))
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  return { ms, cpuUs: cpu.user + cpu.system, bytes }
}

async function main (): Promise<void> {
  installExitHandlers()
  const target = await startTarget()
  onCleanup(target.close)
  const plain = bareAgent(CONCURRENCY)
  const guarded = createDispatcher({ guard: createAddressGuard(['127.0.0.0/8']), connections: CONCURRENCY })
  onCleanup(async () => { await plain.close(); await guarded.close() })
  const dir = mkdtempSync(join(tmpdir(), 'trawl-fetch-micro-'))
  onCleanup(async () => { rmSync(dir, { recursive: true, force: true }) })
  const store = createFsContentStore({ dir })
  const jobId = 'micro'
  let index = 0
  mkdirSync(join(dir, 'bare'))
  const pageOpts = { timeoutMs: TIMEOUT_MS, maxBytes: 25_000_000, maxRedirects: 5, headers: {}, keepContent: true, retries: 0 }

  const contenders: Record<string, FetchOne> = {
    bare: async (url) => readAll((await request(url, { dispatcher: plain })).body),
    'bare+guard': async (url) => readAll((await request(url, { dispatcher: guarded })).body),
    fetchPage: async (url, lane) => {
      const r = await fetchPage(guarded, url, pageOpts, lane)
      if (!r.ok) throw new Error(`${url}: ${r.error?.code}`)
      return r.bytes
    },
    'deadline+pipe': (url, lane) => withDeadline(lane, async (signal) => {
      const res = await request(url, { dispatcher: guarded, signal })
      const chunks: Buffer[] = []
      let n = 0
      await pipeline([res.body, new Writable({ write (c: Buffer, _e, cb) { n += c.length; chunks.push(c); cb() } })], { signal })
      Buffer.concat(chunks, n)
      return n
    }),
    'deadline+read': (url, lane) => withDeadline(lane, async (signal) => readAll((await request(url, { dispatcher: guarded, signal })).body)),
    'fetchPage+fs': async (url, lane) => {
      const key = { jobId, index: index++ }
      const r = await fetchPage(guarded, url, pageOpts, lane, { sink: (chunks, meta, attempt) => store.put(key, chunks, meta, { signal: attempt }) })
      if (!r.ok) throw new Error(`${url}: ${r.error?.code}`)
      return r.bytes
    },
    'bare+file': async (url) => {
      const res = await request(url, { dispatcher: plain })
      const chunks: Buffer[] = []
      for await (const chunk of res.body) chunks.push(chunk as Buffer)
      const path = join(dir, 'bare', String(index++))
      const fd = openSync(`${path}.tmp`, 'wx')
      const data = Buffer.concat(chunks)
      writeSync(fd, data)
      closeSync(fd)
      renameSync(`${path}.tmp`, path)
      return data.length
    }
  }

  const workloads = [
    { title: '2 KB', urls: Array.from({ length: quick ? 2000 : 10_000 }, (_, i) => target.url(2000, 0, i)) },
    { title: '20 KB', urls: Array.from({ length: quick ? 600 : 3000 }, (_, i) => target.url(20_000, 0, i)) }
  ]
  const names = Object.keys(contenders)
  process.stdout.write(`fetch path micro-benchmark: node ${process.version}, c=${CONCURRENCY}, ${rounds} rounds, target ${target.origin}\n`)
  for (const w of workloads) {
    const ms: Record<string, number[]> = {}
    const cpu: Record<string, number[]> = {}
    // Warm-up of every loop, not measured.
    for (const name of names) await loop(w.urls.slice(0, 1000), contenders[name] as FetchOne)
    for (let round = 0; round < rounds; round++) {
      const order = names.map((_, i) => names[(i + round) % names.length] as string)
      for (const name of order) {
        const r = await loop(w.urls, contenders[name] as FetchOne)
        ;(ms[name] ??= []).push(r.ms)
        ;(cpu[name] ??= []).push(r.cpuUs / w.urls.length)
      }
    }
    process.stdout.write(`\n${w.urls.length.toLocaleString('en-US')} x ${w.title} (medians)\n`)
    const base = median(cpu.bare ?? [])
    for (const name of names) {
      const c = median(cpu[name] ?? [])
      const m = median(ms[name] ?? [])
      process.stdout.write(`  ${name.padEnd(14)} ${m.toFixed(0).padStart(6)} ms  ${Math.round((w.urls.length * 1000) / m).toLocaleString('en-US').padStart(7)} URLs/s  CPU ${c.toFixed(0).padStart(4)} µs/URL (+${(c - base).toFixed(0)} vs bare)\n`)
    }
  }
}

main().then(() => cleanupAll(), async (err: unknown) => {
  process.stderr.write(`fetch-micro failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
  await cleanupAll()
})
