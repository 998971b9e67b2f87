/**
 * Summarises a V8 .cpuprofile (from `npm run bench -- --prof`): self time by function and by
 * file or package, the top entries of each.
 *
 *   node --import tsx bench/prof-summary.ts /tmp/trawl-bench-prof-xxxx/CPU.*.cpuprofile [--top=25]
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' } }, allowPositionals: true })
const top = Number(values.top)

function where (url: string): string {
  if (url === '') return '(native/vm)'
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (nm !== null) return `npm:${nm[1]}`
  if (url.startsWith('node:')) return url
  const src = /\/(src|bench|test)\/(.*)$/.exec(url)
  if (src !== null) return `${src[1]}/${src[2]}`
  return url
}

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0))
  }
  const total = (p.endTime - p.startTime) / 1000
  const byFn = new Map<string, number>()
  const byFile = new Map<string, number>()
  for (const [id, us] of self) {
    const n = byId.get(id)
    if (n === undefined) continue
    const f = n.callFrame
    const place = where(f.url)
    const fnKey = `${f.functionName || '(anonymous)'}  ${place}${f.url ? ':' + (f.lineNumber + 1) : ''}`
    byFn.set(fnKey, (byFn.get(fnKey) ?? 0) + us / 1000)
    byFile.set(place, (byFile.get(place) ?? 0) + us / 1000)
  }
  const idle = byFn.get('(idle)  (native/vm)') ?? 0
  process.stdout.write(`\n${file}\n  profile ${total.toFixed(0)} ms, idle ${idle.toFixed(0)} ms, busy ${(total - idle).toFixed(0)} ms\n`)
  const print = (title: string, m: Map<string, number>): void => {
    process.stdout.write(`  ${title}\n`)
    for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(`    ${v.toFixed(0).padStart(7)} ms  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}\n`)
    }
  }
  print('self time by file/package', byFile)
  print('self time by function', byFn)
}
