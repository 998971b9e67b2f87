/**
 * What `-o` costs the client by itself: `trawl watch ID -o DIR` of a job that has finished, so
 * that the server only serves stored bodies and nothing else competes. This checkout's client
 * against another checkout's (`--ab=REF`), both in this process against one `trawl all` of this
 * checkout, rounds alternating which goes first; medians of wall time, of this process's CPU
 * (the client) and of the server's CPU per run.
 *
 *   node --import tsx bench/save-finished.ts [--count=15] [--size=153600] [--rounds=41] [--ab=HEAD~1]
 *
 * The bench's `get -o` rows run while the job runs, where the server's content reads, not the
 * client, set the pace (docs/bench-results.md).
 */
import { EventEmitter } from 'node:events'
import { Writable } from 'node:stream'
import { parseArgs } from 'node:util'
import { checkout, type Checkout } from './lib/checkout.js'
import { processCpuMs } from './lib/cpu.js'
import { clientOf, writeLists, type RunCli } from './lib/geto.js'
import { median, ratio } from './lib/stats.js'
import { startTarget } from './lib/target.js'
import { startTrawl } from './lib/trawl.js'

const { values } = parseArgs({ options: { count: { type: 'string', default: '15' }, size: { type: 'string', default: String(150 * 1024) }, rounds: { type: 'string', default: '41' }, ab: { type: 'string' } } })
const count = Number(values.count)
const size = Number(values.size)
const rounds = Number(values.rounds)

const sides: Array<{ name: string, run: RunCli, ms: number[], client: number[], server: number[] }> = [{ name: 'this', run: await clientOf(undefined), ms: [], client: [], server: [] }]
let other: Checkout | undefined
if (values.ab !== undefined) {
  other = await checkout(values.ab)
  sides.push({ name: `@${values.ab}`, run: await clientOf(other.dir), ms: [], client: [], server: [] })
}

const target = await startTarget()
const trawl = await startTrawl({ prefix: `bench-save-${process.pid}`, workerConcurrency: 50 })
const urls = Array.from({ length: count }, (_, i) => target.url(size, 0, i))
const lists = await writeLists(urls, 'text/html')
const sink = (): Writable => new Writable({ write (_chunk, _enc, done) { done() } })
try {
  const { id } = await trawl.submit(JSON.stringify({ urls, options: { concurrency: 50 } }))
  const doc = await trawl.waitFinal(id)
  if (doc.counts.succeeded !== count) throw new Error(`the job ended ${doc.state} with ${doc.counts.succeeded} of ${count} succeeded`)
  for (let r = 0; r < rounds + 1; r++) {
    for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
      const dir = await lists.freshDir(side.name.replace(/\W/g, '_'))
      const server0 = processCpuMs(trawl.pid)
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      const code = await side.run(['watch', id, '-s', trawl.origin, '-o', dir], { stdout: sink(), stderr: sink(), env: {}, signals: new EventEmitter() })
      const ms = performance.now() - t0
      const cpu = process.cpuUsage(cpu0)
      if (code !== 0) throw new Error(`${side.name}: trawl watch exited ${code}`)
      if (r === 0) continue // warm-up: JIT and the disk
      side.ms.push(ms)
      side.client.push((cpu.user + cpu.system) / 1000)
      side.server.push(processCpuMs(trawl.pid) - server0)
    }
  }
  process.stdout.write(`trawl watch -o of a finished job of ${count} x ${size} bytes, medians of ${rounds} rounds:\n`)
  for (const s of sides) {
    process.stdout.write(`  ${s.name.padEnd(10)} wall ${median(s.ms).toFixed(1)} ms, client CPU ${median(s.client).toFixed(1)} ms, server CPU ${median(s.server).toFixed(0)} ms (10 ms ticks)\n`)
  }
  const [a, b] = sides
  if (a !== undefined && b !== undefined) {
    const paired = a.ms.map((x, i) => x / (b.ms[i] ?? NaN))
    process.stdout.write(`  this/${b.name}: wall ${ratio(median(paired))} (paired), faster in ${paired.filter((x) => x < 1).length} of ${paired.length}; client CPU ${ratio(median(a.client) / median(b.client))}\n`)
  }
} finally {
  await lists.remove()
  await trawl.stop()
  await target.close()
  await other?.remove()
}
