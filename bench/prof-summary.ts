/**
 * Summarises a V8 .cpuprofile (from `npm run bench -- --prof`): self time by function and by
 * file or package, the top entries of each.
 *
 *   node --import tsx bench/prof-summary.ts /tmp/trawl-bench-prof-xxxx/CPU.*.cpuprofile [--top=25]
 *     [--after=runLane]   only samples from the first one with that function on its stack (skips start-up)
 *     [--urls=32000]      also print µs per URL (the URLs fetched in the window, warm-up included)
 *     [--callers=writeLatin1String]   who calls the functions whose name matches (self time by caller chain)
 *     [--tree=6]          top-down tree of inclusive time, this many frames deep, branches of 0.5 % or more
 *
 * Besides self time by function and by file, it charges every sample to the innermost frame of
 * trawl's own code (src/) on its stack: the time each of trawl's functions costs with the library
 * and native code it calls (but not the src/ functions it calls).
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
  parent?: ProfileNode
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

const { values, positionals } = parseArgs({
  options: { top: { type: 'string', default: '25' }, after: { type: 'string' }, urls: { type: 'string' }, callers: { type: 'string' }, tree: { type: 'string' } },
  allowPositionals: true
})
const top = Number(values.top)
const urls = values.urls === undefined ? NaN : Number(values.urls)
const callers = values.callers === undefined ? null : new RegExp(values.callers)

function where (url: string): string {
  if (url === '') return '(native/vm)'
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (nm !== null) return `npm:${nm[1]}`
  if (url.startsWith('node:')) return url
  const src = /\/(src|bench|test)\/(.*)$/.exec(url)
  if (src !== null) return `${src[1]}/${src[2]}`
  return url
}

const name = (n: ProfileNode): string => {
  const f = n.callFrame
  return `${f.functionName || '(anonymous)'}  ${where(f.url)}${f.url ? ':' + (f.lineNumber + 1) : ''}`
}

function stackOf (n: ProfileNode | undefined): ProfileNode[] {
  const out: ProfileNode[] = []
  for (let x = n; x !== undefined; x = x.parent) out.push(x)
  return out
}

for (const file of positionals) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  for (const n of p.nodes) for (const c of n.children ?? []) { const child = byId.get(c); if (child) child.parent = n }
  const self = new Map<number, number>()
  let started = values.after === undefined
  let windowUs = 0
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number
    const dt = p.timeDeltas[i] ?? 0
    if (!started) {
      if (!stackOf(byId.get(id)).some((x) => x.callFrame.functionName === values.after)) continue
      started = true
    }
    windowUs += dt
    self.set(id, (self.get(id) ?? 0) + dt)
  }
  const total = windowUs / 1000
  const byFn = new Map<string, number>()
  const byFile = new Map<string, number>()
  const byOwner = new Map<string, number>()
  const byCaller = new Map<string, number>()
  const add = (m: Map<string, number>, k: string, v: number): void => { m.set(k, (m.get(k) ?? 0) + v) }
  const treeDepth = values.tree === undefined ? 0 : Number(values.tree)
  const tree = new Map<string, number>()
  for (const [id, us] of self) {
    const n = byId.get(id)
    if (n === undefined) continue
    add(byFn, name(n), us / 1000)
    add(byFile, where(n.callFrame.url), us / 1000)
    const stack = stackOf(n)
    const owner = stack.find((x) => x.callFrame.url.includes('/src/') && !x.callFrame.url.includes('node_modules'))
    const fn = n.callFrame.functionName
    const bucket = fn === '(idle)' || fn === '(garbage collector)' || fn === '(program)' ? fn : owner === undefined ? `(no src/ frame) ${where(stack.find((x) => x.callFrame.url !== '')?.callFrame.url ?? '')}` : name(owner)
    add(byOwner, bucket, us / 1000)
    const down = stack.slice(0, -1).reverse()
    for (let d = 1; d <= Math.min(treeDepth, down.length); d++) add(tree, down.slice(0, d).map((x) => x.callFrame.functionName || '(anonymous)').join('\u0000'), us / 1000)
    if (callers !== null && callers.test(fn)) add(byCaller, stack.slice(1, Number(process.env.PROF_DEPTH ?? 5)).map((x) => x.callFrame.functionName || '(anonymous)').join(' < '), us / 1000)
  }
  const idle = byFn.get('(idle)  (native/vm)') ?? 0
  process.stdout.write(`\n${file}\n  ${values.after === undefined ? 'profile' : `window from the first ${values.after}`} ${total.toFixed(0)} ms, idle ${idle.toFixed(0)} ms, busy ${(total - idle).toFixed(0)} ms` +
    (Number.isFinite(urls) ? `, busy ${((1000 * (total - idle)) / urls).toFixed(0)} µs per URL over ${urls} URLs` : '') + '\n')
  const print = (title: string, m: Map<string, number>): void => {
    process.stdout.write(`  ${title}\n`)
    for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      const perUrl = Number.isFinite(urls) ? `${((1000 * v) / urls).toFixed(1).padStart(7)} µs/URL  ` : ''
      process.stdout.write(`    ${v.toFixed(0).padStart(7)} ms  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${perUrl}${k}\n`)
    }
  }
  print('self time by file/package', byFile)
  print('self time by function', byFn)
  print('by innermost src/ frame on the stack (its library and native callees included)', byOwner)
  if (callers !== null) print(`callers of /${values.callers}/`, byCaller)
  if (treeDepth > 0) printTree(tree, total, urls)
}

/** The tree of inclusive times, children under their parent, biggest first; branches under 0.5 % left out. */
function printTree (tree: Map<string, number>, total: number, urls: number): void {
  process.stdout.write('  top-down, inclusive\n')
  const walk = (prefix: string[]): void => {
    const kids = [...tree].filter(([k]) => { const parts = k.split('\u0000'); return parts.length === prefix.length + 1 && prefix.every((p, i) => parts[i] === p) })
    for (const [k, v] of kids.sort((a, b) => b[1] - a[1])) {
      if (v < total * 0.005) continue
      const parts = k.split('\u0000')
      const perUrl = Number.isFinite(urls) ? `${((1000 * v) / urls).toFixed(1).padStart(7)} µs/URL  ` : ''
      process.stdout.write(`    ${v.toFixed(0).padStart(7)} ms ${perUrl}${'  '.repeat(prefix.length)}${parts.at(-1)}\n`)
      walk(parts)
    }
  }
  walk([])
}
