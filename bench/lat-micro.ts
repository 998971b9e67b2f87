/**
 * One slot's cycle time on a slow page, without Redis: 8 loops fetch 20 KB pages that the target
 * answers after 50 ms (400 URLs), with the bare undici loop, fetchPage, and fetchPage into the fs
 * content store; the median time per request and the whole run. Bodies under $TMPDIR.
 *
 *   node --import tsx bench/lat-micro.ts [--rounds=3]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { request } from 'undici'
import { createFsContentStore } from '../src/content/fs-store.js'
import { createDispatcher } from '../src/fetcher/agent.js'
import { fetchPage } from '../src/fetcher/fetch-page.js'
import { createAddressGuard } from '../src/fetcher/guard.js'
import { bareAgent } from './lib/bare.js'
import { cleanupAll, installExitHandlers, onCleanup } from './lib/procs.js'
import { median } from './lib/stats.js'
import { startTarget } from './lib/target.js'

const { values: args } = parseArgs({ options: { rounds: { type: 'string' } } })
const rounds = Number(args.rounds ?? 3)
const LOOPS = 8
const COUNT = 400

type FetchOne = (url: string) => Promise<void>

async function run (urls: string[], one: FetchOne): Promise<{ ms: number, perRequest: number }> {
  let next = 0
  const times: number[] = []
  const t0 = performance.now()
  await Promise.all(Array.from({ length: LOOPS }, async () => {
    while (next < urls.length) {
      const url = urls[next++] as string
      const s = performance.now()
      await one(url)
      times.push(performance.now() - s)
    }
  }))
  return { ms: performance.now() - t0, perRequest: median(times) }
}

async function main (): Promise<void> {
  installExitHandlers()
  const target = await startTarget()
  onCleanup(target.close)
  const plain = bareAgent(LOOPS)
  const guarded = createDispatcher({ guard: createAddressGuard(['127.0.0.0/8']), connections: LOOPS })
  const dir = mkdtempSync(join(tmpdir(), 'trawl-lat-micro-'))
  const store = createFsContentStore({ dir })
  onCleanup(async () => { await plain.close(); await guarded.close(); await store.close(); rmSync(dir, { recursive: true, force: true }) })
  const opts = { timeoutMs: 30_000, maxBytes: 25_000_000, maxRedirects: 5, headers: {}, keepContent: true, retries: 0 }
  const lane = new AbortController().signal
  let index = 0
  const contenders: Record<string, FetchOne> = {
    bare: async (url) => { await (await request(url, { dispatcher: plain })).body.dump({ limit: Infinity }) },
    fetchPage: async (url) => { await fetchPage(guarded, url, opts, lane) },
    'fetchPage+fs': async (url) => {
      const key = { jobId: 'lat', index: index++ }
      await fetchPage(guarded, url, opts, lane, { sink: (chunks, meta, attempt) => store.put(key, chunks, meta, { signal: attempt }) })
    }
  }
  const names = Object.keys(contenders)
  const urls = Array.from({ length: COUNT }, (_, i) => target.url(20_000, 50, i))
  for (const name of names) await run(urls.slice(0, 40), contenders[name] as FetchOne)
  const ms: Record<string, number[]> = {}
  const per: Record<string, number[]> = {}
  for (let r = 0; r < rounds; r++) {
    for (const name of names.map((_, i) => names[(i + r) % names.length] as string)) {
      const res = await run(urls, contenders[name] as FetchOne)
      ;(ms[name] ??= []).push(res.ms)
      ;(per[name] ??= []).push(res.perRequest)
    }
  }
  process.stdout.write(`${COUNT} x 20 KB, 50 ms, ${LOOPS} loops (ideal ${COUNT / LOOPS * 50} ms), medians of ${rounds}\n`)
  for (const name of names) process.stdout.write(`  ${name.padEnd(13)} ${median(ms[name] ?? []).toFixed(0).padStart(5)} ms, ${median(per[name] ?? []).toFixed(1)} ms per request\n`)
}

main().then(() => cleanupAll(), async (err: unknown) => {
  process.stderr.write(`lat-micro failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
  await cleanupAll()
})
