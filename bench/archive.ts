/**
 * `node --import tsx bench/archive.ts [--count=50] [--size-mb=20] [--read-mbps=100] [--dist]`: the
 * API's memory while it streams the ZIP archive of a large job to a slow reader. With `--dist`
 * the API runs from the build (`npm run build` first, then `node dist/main.js api`), as
 * `npm start` and the image run it; without, from the sources through tsx (some 40 MB more idle).
 *
 * A `trawl all` process downloads the job (count x size, keepContent) into an fs content store;
 * a second process, `trawl api` alone on the same Redis prefix and folder, serves
 * `GET /jobs/{id}/archive` to a reader that takes at most `read-mbps` MB/s. Meanwhile the bench
 * reads the job (`GET /jobs/{id}?results=none`) every 100 ms: a slow reader of the archive must
 * hold back nothing else. Printed: the API process's peak RSS over its idle RSS (goal: peak
 * < 200 MB), the archive's size and the slowest other request.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { Agent, request } from 'undici'
import { cleanupAll, installExitHandlers, onCleanup } from './lib/procs.js'
import { benchRedis, removePrefix } from './lib/redis-clean.js'
import { mb, ms } from './lib/stats.js'
import { startTarget } from './lib/target.js'
import { startTrawl } from './lib/trawl.js'

const { values: args } = parseArgs({ options: { count: { type: 'string', default: '50' }, 'size-mb': { type: 'string', default: '20' }, 'read-mbps': { type: 'string', default: '100' }, dist: { type: 'boolean', default: false } } })
const COUNT = Number(args.count)
const SIZE = Number(args['size-mb']) * 1024 * 1024
const READ_BPS = Number(args['read-mbps']) * 1024 * 1024
const log = (line: string): void => { process.stdout.write(line + '\n') }

async function main (): Promise<void> {
  installExitHandlers()
  const prefix = `bench-archive-${randomBytes(3).toString('hex')}`
  const dir = mkdtempSync(join(tmpdir(), 'trawl-bench-archive-'))
  const redis = benchRedis()
  onCleanup(async () => {
    rmSync(dir, { recursive: true, force: true })
    await removePrefix(redis, prefix)
    redis.disconnect()
  })
  const target = await startTarget()
  onCleanup(target.close)
  const env = { CONTENT_DIR: dir, LOG_LEVEL: 'warn' }
  const worker = await startTrawl({ prefix, workerConcurrency: 20, env })
  onCleanup(worker.stop)
  const urls = Array.from({ length: COUNT }, (_, i) => target.url(SIZE, 0, i))
  const { doc } = await worker.run(JSON.stringify({ urls, options: { concurrency: 20, keepContent: true, maxBytes: SIZE + 1024, timeoutMs: 120_000 } }))
  if (doc.state !== 'completed' || doc.counts.succeeded !== COUNT) throw new Error(`the job ended ${doc.state}: ${JSON.stringify(doc.counts)}`)
  await worker.stop()

  if (args.dist === true) execFileSync('npm', ['run', 'build'], { stdio: 'ignore' })
  const api = await startTrawl({ prefix, workerConcurrency: 1, env, role: 'api', entry: args.dist === true ? 'dist' : 'src' })
  onCleanup(api.stop)
  await sleep(500)
  const idle = api.rss.current()
  api.rss.reset()
  log(`job ${doc.id}: ${COUNT} x ${mb(SIZE)} stored; API (${args.dist === true ? 'dist/main.js' : 'src/main.ts through tsx'}) pid ${api.pid}, idle RSS ${mb(idle)}`)

  const agent = new Agent({ connections: 4 })
  const state = { reading: true }
  let slowest = 0
  let polls = 0
  const poller = (async () => {
    while (state.reading) {
      const t0 = performance.now()
      const res = await request(`${api.origin}/jobs/${doc.id}?results=none`, { dispatcher: agent })
      await res.body.dump()
      slowest = Math.max(slowest, performance.now() - t0)
      polls++
      await sleep(100)
    }
  })()

  const t0 = performance.now()
  const res = await request(`${api.origin}/jobs/${doc.id}/archive`, { dispatcher: agent, bodyTimeout: 0 })
  let bytes = 0
  let tail = Buffer.alloc(0)
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    bytes += chunk.length
    tail = Buffer.concat([tail, chunk]).subarray(-4096)
    // A slow reader: no faster than READ_BPS.
    const ahead = (bytes / READ_BPS) * 1000 - (performance.now() - t0)
    if (ahead > 5) await sleep(ahead)
  }
  const took = performance.now() - t0
  state.reading = false
  await poller
  const peak = api.rss.peak()
  const complete = res.statusCode === 200 && tail.includes(Buffer.from([0x50, 0x4b, 0x05, 0x06]))
  log(`archive: ${res.statusCode}, ${mb(bytes)} in ${ms(took)} (${mb(bytes / (took / 1000))}/s), ${complete ? 'ends with its central directory' : 'INCOMPLETE'}`)
  log(`other requests while it streamed: ${polls}, slowest ${ms(slowest)}`)
  log(`API peak RSS ${mb(peak)} (idle ${mb(idle)}, +${mb(peak - idle)})  [${peak < 200 * 1024 * 1024 && complete ? 'PASS' : 'MISS'}: API RSS < 200 MB while it streams the archive]`)
  await agent.close()
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
}).finally(() => cleanupAll())
