/**
 * `npm run bench`: trawl against a bare undici loop on the same local URLs. USAGE below lists
 * the options (`npm run bench -- --help`).
 *
 * Everything runs on 127.0.0.1: a forked target server (bench/target-server.ts), trawl as a child
 * process (`node --import tsx src/main.ts all`, its own REDIS_PREFIX, one process per
 * WORKER_CONCURRENCY), and the bare loop in this process. Runs rotate their order; medians,
 * ratios trawl/bare, CPU per URL and the trawl process's peak RSS are printed, with PASS/MISS
 * against the goals.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs, promisify, type ParseArgsConfig } from 'node:util'
import type { Redis } from 'ioredis'
import { jobKeys, keyList } from '../src/jobs/keys.js'
import { bareAgent, bareLoop } from './lib/bare.js'
import { checkout } from './lib/checkout.js'
import { aria2Get, ensureAria2, trawlGet, writeLists } from './lib/geto.js'
import { CpuMeter } from './lib/cpu.js'
import { curlConfig, curlLoop } from './lib/curl.js'
import { cleanupAll, installExitHandlers, onCleanup } from './lib/procs.js'
import { benchRedis, removePrefix } from './lib/redis-clean.js'
import { addStats, commandStats, slowlog, statsDelta, statsLines, type CommandStats, type SlowEntry } from './lib/redis-stats.js'
import { mb, median, ms, rate, ratio } from './lib/stats.js'
import { startTarget, type Target, type TargetStats } from './lib/target.js'
import { BENCH_CONTENT_BASE, ROOT, startTrawl, type TrawlProcess } from './lib/trawl.js'

interface Workload {
  id: string
  group: string
  title: string
  kind: 'fetch' | 'post' | 'geto'
  count: number
  size: number
  latencyMs: number
  /** The job's options.concurrency, and the bare loop's. */
  concurrency: number
  /** WORKER_CONCURRENCY of the trawl process that runs it. */
  workerConcurrency: number
  keepContent: boolean
  /** geto: trawl get's --parallel (bodies downloaded at once). */
  parallel?: number
  maxBytes?: number
  timeoutMs?: number
  runs: number
  warmupCount: number
  goal?: Goal
  /** Diagnostic workload: runs only when --only names it. */
  optIn?: boolean
  /** Spread the URLs over this many hosts, 127.0.0.2 and on (round robin); 127.0.0.1 otherwise. */
  hosts?: number
  /** Environment of the trawl process that runs it (e.g. HOST_CONCURRENCY). */
  env?: Record<string, string>
  /** A second trawl process of this checkout with other settings, run side by side. */
  baseline?: { name: string, env: Record<string, string> }
  /** The bare loop's concurrency, when not the job's. */
  bareConcurrency?: number
}

interface Goal {
  text: string
  /** The figure compared, formatted, and whether it passes; `sides` by name. */
  check (s: SideResult, bare: SideResult, sides: ReadonlyMap<string, SideResult>): { value: string, pass: boolean }
}

/** The runs of one side (trawl, the --ab checkout, or the bare loop) on one workload. */
interface SideResult {
  name: string
  ms: number[]
  /** trawl sides: POST answer time and the job's own createdAt -> finishedAt. */
  postMs: number[]
  jobMs: number[]
  /** trawl sides: peak RSS of the trawl process per run. */
  peakRss: number[]
  /** Most requests the target answered at once, per run. */
  maxInFlight: number[]
  /**
   * Per run, from the target's clock: start -> first request (`startup`), first request -> last
   * response (`active`), last response -> the side saw the end (`tail`).
   */
  phases: { startup: number[], active: number[], tail: number[] }
  /** trawl sides: the target's first request minus the moment the POST was answered, per run. */
  firstFetch: number[]
  /** With --redis-stats (trawl sides): INFO commandstats deltas summed over the runs, and SLOWLOG entries logged meanwhile. */
  redisStats?: CommandStats
  slow?: SlowEntry[]
  /** CPU ms per run of the side's own process, and of redis-server and the target meanwhile. */
  cpu: Array<Record<string, number>>
  failures: number
  median: {
    ms: number
    post: number
    job: number
    /** CPU µs per URL: the side's process, and redis-server. */
    cpuPerUrl: number
    redisCpuPerUrl: number
    /** median(ms) / median(bare ms); and the median of the per-round ratios. */
    ratio: number
    roundRatio: number
    /** median(ms) / median(curl ms); median(ms) / the latency floor. */
    curlRatio: number
    floorRatio: number
    firstFetch: number
  }
  goal?: { text: string, value: string, pass: boolean }
}

interface WorkloadResult {
  id: string
  title: string
  count: number
  concurrency: number
  idleRss: number
  logLines: number
  sides: SideResult[]
}

const KB = 1000
const MB = 1000 * 1000

const USAGE = `usage: npm run bench -- [options]
  (no options)           every workload (about 2-3 minutes)
  --only=seed,c50        some workloads, by id (seed b50 b200 c50 c200 d post rss hosts20 host1
                         geto-seed geto-b geto-d) or by group letter (a b c d e f g; g is trawl get -o
                         against aria2c, installed from Debian when missing); the diagnostic workloads c50-nokeep and d-nokeep
                         (keepContent:false) run only when named
  --quick                smoke run: one run each, smaller batches
  --runs=7               measured runs per workload (default 5; 9 for post, 3 for rss)
  --prof                 trawl child runs with --cpu-prof (profiles in /tmp; read them with
                         bench/prof-summary.ts)
  --env=LANE_SLICE_MS=5000   extra environment for the trawl children (repeatable)
  --json=out.json        also write every figure as JSON
  --ab=<git-ref>         A/B: this checkout (uncommitted changes included) and a second one of
                         <git-ref> (git worktree add, node_modules linked, removed at the end),
                         side by side, runs rotating between them and bare; --ab=HEAD alone
                         measures the working tree's changes. Each workload then also prints
                         the two sides' ratio round by round ("paired"), the figure least moved
                         by the machine's drift
  --skip-curl            leave out the curl --parallel reference
  --dist                 the trawl children run the build (node dist/main.js, what npm start and
                         the image run), built first with npm run build on each side; without
                         it they run src/main.ts through tsx, whose transpiled code differs
  --content-dir=DIR      where the trawl children keep bodies (a fresh folder each, removed when
                         it stops); default /dev/shm when present (tmpfs: the workload measures
                         trawl, not the disk), else the system's temporary folder
  --redis-stats          per trawl side: INFO commandstats deltas (calls and µs per URL per
                         command) and the SLOWLOG entries logged during its runs (the Redis is
                         shared: other clients' commands are counted too)
  --ab-env=KEY=VALUE     extra environment for the <git-ref> side only (repeatable), e.g.
                         --ab=HEAD --ab-env=LANE_SLICE_MS=600000 to A/B a setting
  --help                 this text
`

const OPTIONS = {
  only: { type: 'string' },
  quick: { type: 'boolean', default: false },
  runs: { type: 'string' },
  prof: { type: 'boolean', default: false },
  env: { type: 'string', multiple: true, default: [] },
  json: { type: 'string' },
  ab: { type: 'string' },
  'ab-env': { type: 'string', multiple: true, default: [] },
  'skip-curl': { type: 'boolean', default: false },
  dist: { type: 'boolean', default: false },
  'content-dir': { type: 'string' },
  'redis-stats': { type: 'boolean', default: false },
  help: { type: 'boolean', default: false }
} satisfies ParseArgsConfig['options']

function parseOptions () {
  try {
    return parseArgs({ options: OPTIONS, strict: true }).values
  } catch (err) {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n${USAGE}`)
    process.exit(2)
  }
}
const args = parseOptions()
if (args.help) {
  process.stdout.write(USAGE)
  process.exit(0)
}

const quick = args.quick === true
const runsOverride = args.runs === undefined ? undefined : Number(args.runs)
const scale = (n: number, quickN: number): number => (quick ? Math.min(n, quickN) : n)
const runs = (n: number, quickN = 1): number => runsOverride ?? (quick ? quickN : n)
const sizeText = (bytes: number): string => (bytes >= MB ? `${bytes / MB} MB` : `${bytes / KB} KB`)

function fetchWorkload (w: Omit<Workload, 'title' | 'kind'> & { note?: string }): Workload {
  const { note, ...rest } = w
  return {
    ...rest,
    kind: 'fetch',
    title: `${w.count.toLocaleString('en-US')} x ${sizeText(w.size)}, ${w.latencyMs} ms, c=${w.concurrency}${note ?? ''}`
  }
}

const ratioGoal = (limit: number, text: string): Goal => ({
  text,
  check: (s) => ({ value: ratio(s.median.ratio), pass: s.median.ratio <= limit })
})

// Issue 11's goals: the 50 ms workloads against their latency floor.
const floorGoal = (limit: number): Goal => ({
  text: `trawl/floor <= ${limit.toFixed(2)}`,
  check: (s) => ({ value: ratio(s.median.floorRatio), pass: s.median.floorRatio <= limit })
})

const seedGoal: Goal = {
  text: 'first fetch < 5 ms after the POST answer and trawl/bare <= 2.00',
  check: (s) => ({ value: `${ms(s.median.firstFetch)}, ${ratio(s.median.ratio)}`, pass: s.median.firstFetch < 5 && s.median.ratio <= 2 })
}

const getGoal: Goal = {
  text: 'trawl get -o no slower than aria2c, i.e. trawl/aria2c <= 1.00',
  check: (s) => ({ value: ratio(s.median.ratio), pass: s.median.ratio <= 1 })
}

function getWorkload (w: Omit<Workload, 'title' | 'kind' | 'group' | 'latencyMs' | 'keepContent' | 'goal'>): Workload {
  return {
    ...w,
    kind: 'geto',
    group: 'g',
    latencyMs: 0,
    keepContent: true,
    goal: getGoal,
    title: `trawl get -o vs aria2c -i: ${w.count.toLocaleString('en-US')} x ${sizeText(w.size)}, c=${w.concurrency}, --parallel ${w.parallel ?? '-'}`
  }
}

const HOST1_COUNT = scale(400, 80)

const WORKLOADS: Workload[] = [
  fetchWorkload({ id: 'seed', group: 'a', count: 15, size: 150 * KB, latencyMs: 0, concurrency: 5, workerConcurrency: 5, keepContent: true, runs: runs(5), warmupCount: 15, note: ' (the seed)', goal: seedGoal }),
  fetchWorkload({ id: 'b50', group: 'b', count: scale(1000, 200), size: 20 * KB, latencyMs: 0, concurrency: 50, workerConcurrency: 50, keepContent: true, runs: runs(5), warmupCount: 1000 }),
  fetchWorkload({
    id: 'c50',
    group: 'c',
    count: scale(1000, 200),
    size: 20 * KB,
    latencyMs: 50,
    concurrency: 50,
    workerConcurrency: 50,
    keepContent: true,
    runs: runs(5),
    warmupCount: 1000,
    goal: floorGoal(1.05)
  }),
  fetchWorkload({
    id: 'd',
    group: 'd',
    count: scale(10_000, 2000),
    size: 2 * KB,
    latencyMs: 0,
    concurrency: 50,
    workerConcurrency: 50,
    keepContent: true,
    runs: runs(5),
    warmupCount: 2000,
    goal: ratioGoal(2, 'trawl >= 0.5 x bare throughput, i.e. trawl/bare <= 2.00')
  }),
  {
    id: 'post',
    group: 'e',
    title: `POST /jobs of ${scale(10_000, 2000).toLocaleString('en-US')} URLs`,
    kind: 'post',
    count: scale(10_000, 2000),
    size: 2 * KB,
    latencyMs: 0,
    concurrency: 50,
    workerConcurrency: 50,
    keepContent: true,
    runs: runs(9, 2),
    warmupCount: 1,
    goal: { text: 'POST answered < 100 ms (median)', check: (s) => ({ value: ms(s.median.post), pass: s.median.post < 100 }) }
  },
  fetchWorkload({
    id: 'rss',
    group: 'f',
    count: scale(100, 20),
    size: 20 * MB,
    latencyMs: 0,
    concurrency: 50,
    workerConcurrency: 50,
    keepContent: true,
    maxBytes: 25 * MB,
    timeoutMs: 120_000,
    runs: runs(3),
    warmupCount: 10,
    note: ', keepContent (bodies stream into the fs content store)',
    goal: {
      text: 'worker peak RSS < 300 MB',
      check: (s) => { const peak = Math.max(...s.peakRss); return { value: mb(peak), pass: peak < 300 * MB } }
    }
  }),
  getWorkload({ id: 'geto-seed', count: 15, size: 150 * KB, concurrency: 5, workerConcurrency: 5, parallel: 16, runs: runs(5), warmupCount: 15 }),
  getWorkload({ id: 'geto-b', count: scale(1000, 200), size: 20 * KB, concurrency: 50, workerConcurrency: 50, parallel: 16, runs: runs(5), warmupCount: 200 }),
  getWorkload({ id: 'geto-d', count: scale(10_000, 2000), size: 2 * KB, concurrency: 50, workerConcurrency: 50, parallel: 16, runs: runs(5), warmupCount: 1000 }),
  fetchWorkload({ id: 'c50-nokeep', group: 'c50-nokeep', count: scale(1000, 200), size: 20 * KB, latencyMs: 50, concurrency: 50, workerConcurrency: 50, keepContent: false, runs: runs(5), warmupCount: 1000, note: ', keepContent:false', optIn: true }),
  fetchWorkload({ id: 'd-nokeep', group: 'd-nokeep', count: scale(10_000, 2000), size: 2 * KB, latencyMs: 0, concurrency: 50, workerConcurrency: 50, keepContent: false, runs: runs(5), warmupCount: 2000, note: ', keepContent:false', optIn: true }),
  fetchWorkload({ id: 'b200', group: 'b', count: scale(1000, 400), size: 20 * KB, latencyMs: 0, concurrency: 200, workerConcurrency: 200, keepContent: true, runs: runs(5), warmupCount: 1000 }),
  fetchWorkload({
    id: 'hosts20',
    group: 'g',
    count: scale(1000, 200),
    size: 20 * KB,
    latencyMs: 50,
    concurrency: 100,
    workerConcurrency: 100,
    keepContent: true,
    runs: runs(5),
    warmupCount: 1000,
    hosts: 20,
    env: { HOST_CONCURRENCY: '8' },
    baseline: { name: 'cap-off', env: { HOST_CONCURRENCY: '0' } },
    note: ' over 20 hosts, HOST_CONCURRENCY=8',
    goal: {
      text: 'within 1.1x of the same run with HOST_CONCURRENCY=0',
      check: (s, _bare, sides) => {
        const off = sides.get('cap-off')?.median.ms ?? NaN
        return { value: `${ratio(s.median.ms / off)} (cap off ${ms(off)})`, pass: s.median.ms / off <= 1.1 }
      }
    }
  }),
  fetchWorkload({
    id: 'host1',
    group: 'g',
    count: HOST1_COUNT,
    size: 20 * KB,
    latencyMs: 50,
    concurrency: 50,
    workerConcurrency: 50,
    keepContent: true,
    runs: runs(5),
    warmupCount: 400,
    hosts: 1,
    env: { HOST_CONCURRENCY: '8' },
    bareConcurrency: 8,
    note: ' on one host, HOST_CONCURRENCY=8 (bare loop at c=8)',
    goal: {
      text: 'within 1.1x of N / 8 x 50 ms',
      check: (s) => {
        const ideal = (HOST1_COUNT / 8) * 50
        return { value: `${ratio(s.median.ms / ideal)} (ideal ${ms(ideal)})`, pass: s.median.ms / ideal <= 1.1 }
      }
    }
  }),
  fetchWorkload({
    id: 'c200',
    group: 'c',
    count: scale(1000, 400),
    size: 20 * KB,
    latencyMs: 50,
    concurrency: 200,
    workerConcurrency: 200,
    keepContent: true,
    runs: runs(5),
    warmupCount: 1000,
    goal: floorGoal(1.25)
  })
]

const log = (line: string): void => { process.stdout.write(line + '\n') }
const sleep = (millis: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, millis))
const us = (x: number): string => `${x.toFixed(0)} µs`

function selected (): Workload[] {
  if (args.only === undefined) return WORKLOADS.filter((w) => w.optIn !== true)
  const wanted = new Set(args.only.split(',').map((s) => s.trim()).filter(Boolean))
  const known = new Set(WORKLOADS.flatMap((w) => [w.id, w.group]))
  for (const w of wanted) if (!known.has(w)) throw new Error(`--only: unknown workload ${w} (known: ${[...known].join(' ')})`)
  return WORKLOADS.filter((w) => wanted.has(w.id) || (w.optIn !== true && wanted.has(w.group)))
}

function extraEnv (pairs: string[] = args.env ?? []): Record<string, string> {
  const env: Record<string, string> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new Error(`--env wants KEY=VALUE, not ${pair}`)
    env[pair.slice(0, eq)] = pair.slice(eq + 1)
  }
  return env
}

/** `npm run build` in a checkout, for --dist. */
async function build (dir: string): Promise<void> {
  const t0 = performance.now()
  await promisify(execFile)('npm', ['run', 'build'], { cwd: dir, encoding: 'utf8' })
  log(`built ${dir} in ${ms(performance.now() - t0)}`)
}

/** A trawl process under test: `trawl` (this checkout) and, with --ab, the git ref's. */
interface Contender {
  name: string
  proc: TrawlProcess
  idleRss: number
  /** The checkout it runs (this one when undefined): the `get -o` rows run that checkout's client too. */
  root?: string
}

async function main (): Promise<void> {
  installExitHandlers()
  const started = performance.now()
  const workloads = selected()
  const runId = randomBytes(3).toString('hex')
  const redis = benchRedis()
  const prefixes: string[] = []
  onCleanup(async () => {
    let removed = 0
    for (const prefix of prefixes) removed += await removePrefix(redis, prefix)
    log(`\ncleanup: removed ${removed} Redis keys under ${prefixes.join(', ') || '(none)'}`)
    redis.disconnect()
  })
  const redisPid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1] ?? NaN)
  const target = await startTarget(Math.max(0, ...WORKLOADS.map((w) => w.hosts ?? 0)))
  onCleanup(target.close)
  const profDir = join(tmpdir(), `trawl-bench-prof-${runId}`)
  const env = extraEnv()

  // The second checkout goes last: cleanup runs last registered first, so after its process stopped.
  const other = args.ab === undefined ? undefined : await checkout(args.ab)
  if (other !== undefined) onCleanup(other.remove)
  const entry = args.dist === true ? 'dist' : 'src'
  if (entry === 'dist') {
    for (const dir of [ROOT, ...(other === undefined ? [] : [other.dir])]) await build(dir)
  }
  const mode = other === undefined ? '' : ` (A/B: this checkout vs ${args.ab} = ${other.commit.slice(0, 12)})`
  log(`trawl bench${quick ? ' (--quick: smoke figures, not comparable)' : ''}${mode}: node ${process.version}, target ${target.origin} (pid ${target.pid}), bodies under ${args['content-dir'] ?? BENCH_CONTENT_BASE}` +
    (Object.keys(env).length > 0 ? `, trawl env ${JSON.stringify(env)}` : ''))

  async function contender (name: string, prefix: string, workerConcurrency: number, root: string | undefined, ownEnv: Record<string, string> = {}): Promise<Contender> {
    prefixes.push(prefix)
    const t0 = performance.now()
    const proc = await startTrawl({
      prefix,
      workerConcurrency,
      env: { ...env, ...ownEnv },
      contentBase: args['content-dir'] ?? BENCH_CONTENT_BASE,
      entry,
      ...(root === undefined ? {} : { root }),
      ...(args.prof === true ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] } : {})
    })
    onCleanup(proc.stop)
    await sleep(300)
    const idleRss = proc.rss.current()
    log(`\n${name}: ${entry === 'dist' ? join(root ?? '.', 'dist/main.js') : join(root ?? '.', 'src/main.ts')} all${Object.keys(ownEnv).length > 0 ? ` with ${JSON.stringify(ownEnv)}` : ''}, pid ${proc.pid}, WORKER_CONCURRENCY=${workerConcurrency}, REDIS_PREFIX=${prefix}; ready in ${ms(performance.now() - t0)}, idle RSS ${mb(idleRss)}`)
    return { name, proc, idleRss, ...(root === undefined ? {} : { root }) }
  }

  if (workloads.some((w) => w.kind === 'geto')) ensureAria2(log)
  const results: WorkloadResult[] = []
  // One set of trawl processes per WORKER_CONCURRENCY and settings.
  const groupKey = (w: Workload): string => JSON.stringify([w.workerConcurrency, w.env ?? {}, w.baseline ?? null])
  const groups = [...new Set(workloads.map(groupKey))]
  for (const [n, key] of groups.entries()) {
    const first = workloads.find((w) => groupKey(w) === key) as Workload
    const { workerConcurrency } = first
    const tag = `bench-${runId}-w${workerConcurrency}${n > 0 ? `-${n}` : ''}`
    const contenders = [await contender('trawl', tag, workerConcurrency, undefined, first.env)]
    if (first.baseline !== undefined) contenders.push(await contender(first.baseline.name, `${tag}-${first.baseline.name}`, workerConcurrency, undefined, first.baseline.env))
    if (other !== undefined) contenders.push(await contender(`@${args.ab ?? ''}`, `${tag}-ab`, workerConcurrency, other.dir, { ...first.env, ...extraEnv(args['ab-env']) }))
    for (const w of workloads.filter((x) => groupKey(x) === key)) {
      const r = w.kind === 'post'
        ? await runPost(w, contenders, target, redis)
        : w.kind === 'geto'
          ? await runGetO(w, contenders, target, redis)
          : await runFetch(w, contenders, target, redis, redisPid)
      results.push(r)
      printResult(r)
    }
    for (const c of contenders) await c.proc.stop()
  }
  summary(results)
  if (args.prof === true) log(`\nCPU profiles of the trawl processes: ${profDir}`)
  if (args.json !== undefined) {
    writeFileSync(args.json, JSON.stringify({ quick, ab: args.ab ?? null, abCommit: other?.commit ?? null, node: process.version, results }, null, 2))
  }
  log(`\ntotal bench time ${ms(performance.now() - started)}`)
}

function bodyOf (w: Workload, urls: readonly string[]): string {
  const options: Record<string, unknown> = { concurrency: w.concurrency, keepContent: w.keepContent }
  if (w.maxBytes !== undefined) options.maxBytes = w.maxBytes
  if (w.timeoutMs !== undefined) options.timeoutMs = w.timeoutMs
  return JSON.stringify({ urls, options })
}

/**
 * The job's keys go now; its bodies stay until the trawl process stops and its content folder is
 * removed. Purging 10,000 bodies between rounds would measure the disk, not trawl: on this
 * machine's ext4 (no journal) a file created in the minute after many were deleted costs ~0.5 ms
 * of kernel CPU, as the allocator skips every recently deleted inode (docs/bench-results.md).
 */
async function dropJob (redis: Redis, proc: TrawlProcess, id: string): Promise<void> {
  const keys = jobKeys(proc.prefix, id)
  await redis.unlink(...keyList(keys), keys.meta.replace(/:meta$/, ':content'))
}

function emptySide (name: string): SideResult {
  return {
    name,
    ms: [],
    postMs: [],
    jobMs: [],
    peakRss: [],
    maxInFlight: [],
    phases: { startup: [], active: [], tail: [] },
    firstFetch: [],
    cpu: [],
    failures: 0,
    median: { ms: NaN, post: NaN, job: NaN, cpuPerUrl: NaN, redisCpuPerUrl: NaN, ratio: NaN, roundRatio: NaN, curlRatio: NaN, floorRatio: NaN, firstFetch: NaN }
  }
}

async function runFetch (w: Workload, contenders: Contender[], target: Target, redis: Redis, redisPid: number): Promise<WorkloadResult> {
  const logBefore = contenders.map((c) => c.proc.warnings().count)
  const urls = Array.from({ length: w.count }, (_, i) => target.url(w.size, w.latencyMs, i, w.hosts === undefined ? 1 : 2 + (i % w.hosts)))
  const body = bodyOf(w, urls)
  const warmUrls = urls.slice(0, Math.min(w.warmupCount, urls.length))
  const bareConcurrency = w.bareConcurrency ?? w.concurrency
  const agent = bareAgent(bareConcurrency)
  const bare = emptySide('bare')
  const curl = args['skip-curl'] === true ? null : emptySide('curl')
  const curlFile = curl === null ? '' : curlConfig(urls, w.id)
  const warmCurlFile = curl === null ? '' : curlConfig(warmUrls, `${w.id}-warm`)
  const sides = new Map<string, SideResult>(contenders.map((c) => [c.name, emptySide(c.name)]))

  type Step = { name: string, go: (round: number) => Promise<number> }
  const steps: Step[] = contenders.map((c) => ({
    name: c.name,
    go: async (round) => {
      const side = sides.get(c.name) as SideResult
      const meter = new CpuMeter({ self: c.proc.pid, redis: redisPid, target: target.pid })
      await target.stats(true)
      c.proc.rss.reset()
      const statsBefore = args['redis-stats'] === true ? await commandStats(redis) : null
      const slowBefore = statsBefore === null ? 0 : (await slowlog(redis, 1))[0]?.id ?? -1
      meter.start()
      const wall0 = performance.timeOrigin + performance.now()
      const t = await c.proc.run(body)
      side.cpu.push(meter.stop())
      if (statsBefore !== null) await recordRedisStats(side, redis, statsBefore, slowBefore)
      side.peakRss.push(c.proc.rss.peak())
      const st = await target.stats()
      side.maxInFlight.push(w.hosts === undefined ? st.maxInFlight : st.maxPerHost)
      recordPhases(side, wall0, t.ms, st)
      side.firstFetch.push(st.firstAt - (wall0 + t.postMs))
      side.ms.push(t.ms)
      side.postMs.push(t.postMs)
      side.jobMs.push(t.jobMs)
      const counts = t.doc.counts
      if (t.doc.state !== 'completed' || counts.succeeded !== w.count) {
        side.failures++
        log(`  ! ${c.name} run ${round + 1}: state ${t.doc.state}, counts ${JSON.stringify(counts)}`)
      }
      await dropJob(redis, c.proc, t.doc.id)
      return t.ms
    }
  }))
  // A reference side's round (the bare loop, curl): CPU, the target's peak and phases around `run`.
  // `cpuMs` is the reference's own CPU when it runs in another process (curl); the bare loop's is this one's.
  const reference = (name: string, side: SideResult, run: () => Promise<{ ms: number, failures: number, cpuMs?: number }>): Step => ({
    name,
    go: async (round) => {
      const meter = new CpuMeter({ redis: redisPid, target: target.pid })
      await target.stats(true)
      meter.start()
      const wall0 = performance.timeOrigin + performance.now()
      const r = await run()
      const cpu = meter.stop()
      side.cpu.push({ ...cpu, self: r.cpuMs ?? cpu.bench ?? NaN })
      const st = await target.stats()
      side.maxInFlight.push(st.maxInFlight)
      recordPhases(side, wall0, r.ms, st)
      side.ms.push(r.ms)
      if (r.failures > 0) {
        side.failures++
        log(`  ! ${name} run ${round + 1}: ${r.failures} failures`)
      }
      return r.ms
    }
  })
  steps.push(reference('bare', bare, () => bareLoop(agent, urls, bareConcurrency, w.keepContent)))
  if (curl !== null) steps.push(reference('curl', curl, () => curlLoop(curlFile, w.concurrency)))

  try {
    // Warm-up, not measured: JIT, connections and Redis scripts, on every side.
    for (const c of contenders) {
      const warm = await c.proc.run(bodyOf(w, warmUrls))
      await dropJob(redis, c.proc, warm.doc.id)
    }
    await bareLoop(agent, warmUrls, bareConcurrency, w.keepContent)
    if (curl !== null) await curlLoop(warmCurlFile, w.concurrency)

    const roundRatios = new Map<string, number[]>()
    for (let round = 0; round < w.runs; round++) {
      const order = steps.map((_, i) => steps[(i + round) % steps.length] as Step)
      const took: Record<string, number> = {}
      for (const step of order) took[step.name] = await step.go(round)
      const parts = order.map((s) => {
        const side = s.name === 'bare' ? bare : s.name === 'curl' ? curl as SideResult : sides.get(s.name) as SideResult
        // With no latency the target answers at once, so requests in flight only show with latency.
        const inFlight = w.latencyMs > 0 ? `${side.maxInFlight.at(-1)} in flight` : ''
        const extra = s.name === 'bare' || s.name === 'curl'
          ? inFlight
          : [`POST ${ms(side.postMs.at(-1) ?? NaN)}`, `RSS ${mb(side.peakRss.at(-1) ?? NaN)}`, inFlight].filter(Boolean).join(', ')
        return `${s.name} ${ms(took[s.name] ?? NaN)}${extra === '' ? '' : ` (${extra})`}`
      })
      for (const c of contenders) {
        const x = (took[c.name] ?? NaN) / (took.bare ?? NaN)
        const list = roundRatios.get(c.name) ?? []
        list.push(x)
        roundRatios.set(c.name, list)
      }
      log(`  ${w.id} ${round + 1}/${w.runs}: ${parts.join('; ')}; ${contenders.map((c) => `${c.name}/bare ${ratio(roundRatios.get(c.name)?.at(-1) ?? NaN)}`).join(', ')}`)
    }
    if (contenders.length === 2) logPaired(w.id, contenders[0]?.name ?? '', contenders[1]?.name ?? '', roundRatios)
    finishSide(w, bare, bare, [], curl)
    if (curl !== null) finishSide(w, curl, bare, [], curl)
    for (const c of contenders) finishSide(w, sides.get(c.name) as SideResult, bare, roundRatios.get(c.name) ?? [], curl)
    for (const c of contenders) setGoal(w, sides.get(c.name) as SideResult, bare, sides)
  } finally {
    await agent.close()
    for (const file of [curlFile, warmCurlFile]) if (file !== '') rmSync(file, { force: true })
  }
  return {
    id: w.id,
    title: w.title,
    count: w.count,
    concurrency: w.concurrency,
    idleRss: contenders[0]?.idleRss ?? NaN,
    logLines: logLines(contenders, logBefore),
    sides: [...sides.values(), bare, ...(curl === null ? [] : [curl])]
  }
}

/** Adds one run's INFO commandstats delta and new SLOWLOG entries to the side (--redis-stats). */
async function recordRedisStats (side: SideResult, redis: Redis, before: CommandStats, slowBefore: number): Promise<void> {
  const delta = statsDelta(before, await commandStats(redis))
  // The bench's own INFO and SLOWLOG calls.
  delta.delete('info')
  delta.delete('slowlog|get')
  addStats(side.redisStats ??= new Map(), delta)
  const fresh = (await slowlog(redis)).filter((e) => e.id > slowBefore)
  ;(side.slow ??= []).push(...fresh)
}

/** The least time a workload can take: its rounds of `concurrency` requests, each `latencyMs`. */
const floorMs = (w: Workload): number => (w.latencyMs > 0 ? Math.ceil(w.count / w.concurrency) * w.latencyMs : NaN)

async function runPost (w: Workload, contenders: Contender[], target: Target, redis: Redis): Promise<WorkloadResult> {
  const logBefore = contenders.map((c) => c.proc.warnings().count)
  const urls = Array.from({ length: w.count }, (_, i) => target.url(w.size, w.latencyMs, i))
  const body = bodyOf(w, urls)
  log(`  request body ${(Buffer.byteLength(body) / 1000).toFixed(0)} KB`)
  const sides = contenders.map((c) => emptySide(c.name))
  for (let round = -w.warmupCount; round < w.runs; round++) {
    const parts: string[] = []
    for (let i = 0; i < contenders.length; i++) {
      const c = contenders[(i + Math.max(round, 0)) % contenders.length] as Contender
      const side = sides[contenders.indexOf(c)] as SideResult
      c.proc.rss.reset()
      const { id, postMs } = await c.proc.submit(body)
      // Only the answer to the POST is measured: cancel, let the lanes see it and end.
      await c.proc.cancel(id)
      await c.proc.waitFinal(id)
      await sleep(300)
      await dropJob(redis, c.proc, id)
      if (round < 0) continue
      side.postMs.push(postMs)
      side.peakRss.push(c.proc.rss.peak())
      parts.push(`${c.name} ${ms(postMs)}`)
    }
    if (round >= 0) log(`  post ${round + 1}/${w.runs}: ${parts.join(', ')}`)
  }
  for (const side of sides) {
    finishSide(w, side, null, [])
    setGoal(w, side, side, new Map())
  }
  return {
    id: w.id,
    title: w.title,
    count: w.count,
    concurrency: w.concurrency,
    idleRss: contenders[0]?.idleRss ?? NaN,
    logLines: logLines(contenders, logBefore),
    sides
  }
}

/**
 * trawl get -o DIR (each contender's own checkout's client, in this process, against that
 * contender) against aria2c writing the same files, rounds alternating which goes first. The aria2c side
 * takes the place of `bare` in the figures, so side/bare is trawl/aria2c.
 */
async function runGetO (w: Workload, contenders: Contender[], target: Target, redis: Redis): Promise<WorkloadResult> {
  // Every trawl side (this checkout and, with --ab, the other) against aria2c; a baseline
  // contender (a setting's A/B) counts as a trawl side too.
  const logBefore = contenders.map((x) => x.proc.warnings().count)
  const urls = Array.from({ length: w.count }, (_, i) => target.url(w.size, w.latencyMs, i))
  const lists = await writeLists(urls, 'text/html')
  const sides = contenders.map((c) => ({ c, side: emptySide(c.name), ratios: [] as number[] }))
  const aria2 = emptySide('bare')
  const parallel = w.parallel ?? 16
  const goTrawl = async (c: Contender, side: SideResult): Promise<number> => {
    const r = await trawlGet(c.proc.origin, lists.trawl, await lists.freshDir(c.name), w.concurrency, parallel, c.root)
    if (r.jobId !== null) await dropJob(redis, c.proc, r.jobId)
    if (r.exitCode !== 0 || r.files !== w.count) {
      side.failures++
      log(`  ! ${c.name} get: exit ${r.exitCode}, ${r.files} of ${w.count} files`)
    }
    return r.ms
  }
  const goAria2 = async (): Promise<number> => {
    const r = await aria2Get(lists.aria2, await lists.freshDir('aria2'), w.concurrency)
    if (r.exitCode !== 0 || r.files !== w.count) {
      aria2.failures++
      log(`  ! aria2c: exit ${r.exitCode}, ${r.files} of ${w.count} files`)
    }
    return r.ms
  }
  try {
    // Warm-up, not measured: JIT, connections and Redis scripts on trawl's side; the disk on both.
    for (const { c, side } of sides) await goTrawl(c, side)
    await goAria2()
    const roundRatios = new Map(sides.map(({ c, ratios }) => [c.name, ratios]))
    // aria2c is the last of the runners; the order rotates so that none always runs first.
    const runners = [...sides.map(({ c, side }) => ({ name: c.name, go: async () => await goTrawl(c, side) })), { name: 'aria2c', go: goAria2 }]
    for (let round = 0; round < w.runs; round++) {
      const turn = round % runners.length
      const took: number[] = new Array<number>(runners.length)
      for (const i of [...runners.keys()].map((k) => (k + turn) % runners.length)) took[i] = await (runners[i] as typeof runners[number]).go()
      const aMs = took[sides.length] as number
      aria2.ms.push(aMs)
      const parts = sides.map(({ c, side, ratios }, i) => {
        const tMs = took[i] as number
        side.ms.push(tMs)
        ratios.push(tMs / aMs)
        return `${c.name} get -o ${ms(tMs)} (${ratio(tMs / aMs)})`
      })
      log(`  ${w.id} ${round + 1}/${w.runs}: ${parts.join(', ')}, aria2c ${ms(aMs)}; ${runners[turn]?.name ?? ''} first`)
    }
    finishSide(w, aria2, aria2, [])
    for (const { side, ratios } of sides) finishSide(w, side, aria2, ratios)
    for (const { c } of sides.slice(1)) logPaired(w.id, sides[0]?.c.name ?? 'trawl', c.name, roundRatios)
  } finally {
    await lists.remove()
  }
  return { id: w.id, title: w.title, count: w.count, concurrency: w.concurrency, idleRss: contenders[0]?.idleRss ?? 0, logLines: logLines(contenders, logBefore), sides: [...sides.map((x) => x.side), aria2] }
}

function recordPhases (side: SideResult, wall0: number, took: number, st: TargetStats): void {
  side.phases.startup.push(st.firstAt - wall0)
  side.phases.active.push(st.lastAt - st.firstAt)
  side.phases.tail.push(wall0 + took - st.lastAt)
}

function logLines (contenders: Contender[], before: number[]): number {
  let lines = 0
  contenders.forEach((c, i) => {
    if (c.proc.waitDrops() > 0) log(`  ${c.name}: ${c.proc.waitDrops()} GET ?wait=60 polls so far were closed by the server before an answer (asked again)`)
    const now = c.proc.warnings()
    const n = now.count - (before[i] ?? 0)
    if (n > 0) log(`  ${c.name} logged ${n} lines at warn level or above; last:\n    ${now.last.join('\n    ')}`)
    lines += n
  })
  return lines
}

function finishSide (w: Workload, side: SideResult, bare: SideResult | null, roundRatios: number[], curl: SideResult | null = null): void {
  const perUrl = (key: string): number => median(side.cpu.map((c) => ((c[key] ?? NaN) * 1000) / w.count))
  side.median = {
    ms: median(side.ms),
    post: median(side.postMs),
    job: median(side.jobMs),
    cpuPerUrl: perUrl('self'),
    redisCpuPerUrl: perUrl('redis'),
    ratio: bare === null ? NaN : median(side.ms) / median(bare.ms),
    roundRatio: median(roundRatios),
    curlRatio: curl === null ? NaN : median(side.ms) / median(curl.ms),
    floorRatio: median(side.ms) / floorMs(w),
    firstFetch: median(side.firstFetch)
  }
}

/** The workload's goal on a side (not bare, not a baseline run only to compare with). */
function setGoal (w: Workload, side: SideResult, bare: SideResult, sides: ReadonlyMap<string, SideResult>): void {
  if (w.goal === undefined || side.name === 'bare' || side.name === w.baseline?.name) return
  side.goal = { text: w.goal.text, ...w.goal.check(side, bare, sides) }
}

/**
 * An A/B's two sides, round by round: each round's time of the first over the second, both
 * taken over that round's bare loop. The machine's speed drifts between rounds, far less within
 * one, so this is the figure to judge a change by.
 */
function logPaired (id: string, a: string, b: string, roundRatios: ReadonlyMap<string, number[]>): void {
  const ra = roundRatios.get(a) ?? []
  const rb = roundRatios.get(b) ?? []
  const paired = ra.map((x, i) => x / (rb[i] ?? NaN)).filter(Number.isFinite)
  if (paired.length === 0) return
  const faster = paired.filter((x) => x < 1).length
  log(`  ${id} paired: ${a}/${b} per round ${paired.map(ratio).join(', ')}; median ${ratio(median(paired))}; ${a} faster in ${faster} of ${paired.length} rounds`)
}

function goalText (s: SideResult): string {
  return s.goal === undefined ? '' : `  [${s.goal.pass ? 'PASS' : 'MISS'}: ${s.goal.text}; got ${s.goal.value}]`
}

const isReference = (s: SideResult): boolean => s.name === 'bare' || s.name === 'curl'
const fmt = (x: number, f: (v: number) => string): string => (Number.isFinite(x) ? f(x) : '-')

function printResult (r: WorkloadResult): void {
  const bare = r.sides.find((x) => x.name === 'bare')
  const curl = r.sides.find((x) => x.name === 'curl')
  for (const s of r.sides) {
    if (isReference(s)) continue
    const peak = s.peakRss.length > 0 ? Math.max(...s.peakRss) : NaN
    if (s.ms.length === 0 || bare === undefined) {
      log(`= ${r.title} [${s.name}]: POST median ${ms(s.median.post)} (runs ${s.postMs.map(ms).join(', ')})${goalText(s)}`)
      continue
    }
    const baseName = r.id.startsWith('geto') ? 'aria2c' : 'bare'
    log(`= ${r.title} [${s.name}]: ${ms(s.median.ms)} (${rate(r.count, s.median.ms)}), ${baseName} ${ms(bare.median.ms)} (${rate(r.count, bare.median.ms)}), ` +
      `${s.name}/${baseName} ${ratio(s.median.ratio)} (median of rounds ${ratio(s.median.roundRatio)})` +
      (curl === undefined ? '' : `, curl ${ms(curl.median.ms)}, ${s.name}/curl ${ratio(s.median.curlRatio)}`) +
      (Number.isFinite(s.median.floorRatio) ? `, ${s.name}/floor ${ratio(s.median.floorRatio)}` : '') +
      `, peak RSS ${mb(peak)}${goalText(s)}`)
    if (s.cpu.length === 0) continue
    log(`  CPU per URL (median): ${s.name} process ${us(s.median.cpuPerUrl)} + redis-server ${us(s.median.redisCpuPerUrl)}; bare loop ${us(bare.median.cpuPerUrl)}` +
      (curl === undefined ? '' : `; curl ${us(curl.median.cpuPerUrl)} (+ redis-server meanwhile ${us(curl.median.redisCpuPerUrl)})`))
    const ph = (x: SideResult): string => `start ${ms(median(x.phases.startup))}, fetching ${ms(median(x.phases.active))}, end seen ${ms(median(x.phases.tail))}`
    log(`  phases (median, target's clock): ${s.name} ${ph(s)} (first fetch ${ms(s.median.firstFetch)} after the POST answer); bare ${ph(bare)}` +
      (curl === undefined ? '' : `; curl ${ph(curl)}`))
    printRedisStats(s, r.count)
  }
}

function printRedisStats (s: SideResult, count: number): void {
  if (s.redisStats === undefined) return
  const urls = count * s.ms.length
  log(`  redis commandstats over ${s.ms.length} runs (whole server, shared), per URL:`)
  for (const line of statsLines(s.redisStats, urls)) log(`    ${line}`)
  const slow = s.slow ?? []
  log(`  SLOWLOG entries during the runs: ${slow.length}${slow.length > 0 ? '; slowest: ' : ''}` +
    [...slow].sort((a, b) => b.usec - a.usec).slice(0, 5).map((e) => `${e.command} ${e.usec} µs`).join('; '))
}

function summary (results: WorkloadResult[]): void {
  log('\nSummary (medians)')
  const rows = [['workload', 'side', 'time', 'bare', 'curl', 'side/bare', 'side/curl', 'side/floor', 'URLs/s', 'bare URLs/s', 'first fetch', 'POST', 'peak RSS', 'goal']]
  const cpu = [['workload', 'side', 'trawl µs/URL', 'redis µs/URL', 'sum', 'bare µs/URL', 'curl µs/URL']]
  for (const r of results) {
    const bare = r.sides.find((x) => x.name === 'bare')
    const curl = r.sides.find((x) => x.name === 'curl')
    for (const s of r.sides) {
      if (isReference(s)) continue
      const fetch = s.ms.length > 0 && bare !== undefined
      rows.push([
        r.title,
        s.name,
        fetch ? ms(s.median.ms) : '-',
        fetch ? ms(bare.median.ms) : '-',
        fetch && curl !== undefined ? ms(curl.median.ms) : '-',
        fetch ? ratio(s.median.ratio) : '-',
        fmt(s.median.curlRatio, ratio),
        fmt(s.median.floorRatio, ratio),
        fetch ? rate(r.count, s.median.ms) : '-',
        fetch ? rate(r.count, bare.median.ms) : '-',
        fmt(s.median.firstFetch, ms),
        s.postMs.length > 0 ? ms(s.median.post) : '-',
        s.peakRss.length > 0 ? mb(Math.max(...s.peakRss)) : '-',
        s.goal === undefined ? '' : `${s.goal.pass ? 'PASS' : 'MISS'} (${s.goal.text}: ${s.goal.value})`
      ])
      if (fetch && s.cpu.length > 0) {
        cpu.push([r.title, s.name, us(s.median.cpuPerUrl), us(s.median.redisCpuPerUrl), us(s.median.cpuPerUrl + s.median.redisCpuPerUrl),
          us(bare.median.cpuPerUrl), curl === undefined ? '-' : us(curl.median.cpuPerUrl)])
      }
    }
  }
  printTable(rows)
  log('\nCPU per URL (medians; /proc/<pid>/stat, 10 ms ticks; goal on 10,000 x 2 KB: trawl < 80 µs, redis < 25 µs)')
  printTable(cpu)
}

function printTable (rows: string[][]): void {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((row) => (row[c] ?? '').length))) ?? []
  for (const row of rows) log(row.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd())
}

main().then(() => cleanupAll(), async (err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
  await cleanupAll()
})
