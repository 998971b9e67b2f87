import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { FINAL_JOB_STATES } from '../../src/jobs/schemas.js'
import { freePort } from '../../src/redis/free-port.js'
import { track } from './procs.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface JobDoc {
  id: string
  state: string
  total: number
  counts: { pending: number, running: number, succeeded: number, failed: number, cancelled: number }
  bytes: number
  durationMs: number | null
  startedAt: string | null
  finishedAt: string | null
  createdAt: string
}

export interface TrawlRun {
  /** POST sent to the final state seen by GET ?wait. */
  ms: number
  /** POST sent to its answer read. */
  postMs: number
  /** The job's own createdAt -> finishedAt, as stored by trawl. */
  jobMs: number
  doc: JobDoc
}

/**
 * Samples a process's resident set. The kernel's peak (VmHWM) is reset by writing 5 to
 * /proc/<pid>/clear_refs (root, Linux 4.0+); a 20 ms VmRSS poll backs it up where that fails.
 */
export class RssMonitor {
  #polled = 0
  #hwmResettable = true
  readonly #timer: NodeJS.Timeout

  constructor (readonly pid: number) {
    this.#timer = setInterval(() => {
      const rss = this.#read('VmRSS')
      if (rss > this.#polled) this.#polled = rss
    }, 20)
    this.#timer.unref()
  }

  #read (field: 'VmRSS' | 'VmHWM'): number {
    try {
      const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'))
      return m === null ? 0 : Number(m[1]) * 1024
    } catch {
      return 0
    }
  }

  /** Resident bytes now. */
  current (): number {
    return this.#read('VmRSS')
  }

  /** Starts a new peak. */
  reset (): void {
    if (this.#hwmResettable) {
      try {
        writeFileSync(`/proc/${this.pid}/clear_refs`, '5')
      } catch {
        this.#hwmResettable = false
      }
    }
    this.#polled = this.current()
  }

  /** Peak resident bytes since the last reset. */
  peak (): number {
    const hwm = this.#hwmResettable ? this.#read('VmHWM') : 0
    return Math.max(hwm, this.#polled, this.current())
  }

  stop (): void {
    clearInterval(this.#timer)
  }
}

export interface TrawlOptions {
  prefix: string
  workerConcurrency: number
  /** Extra node flags for the child, e.g. --cpu-prof. */
  nodeArgs?: string[]
  /** The checkout whose src/main.ts runs, e.g. a second one for --ab; this one by default. */
  root?: string
  env?: Record<string, string>
  /** `all` (the default) or `api` alone, e.g. to measure the API's memory by itself. */
  role?: 'all' | 'api'
  /** `src` (the default): `node --import tsx src/main.ts`; `dist`: `node dist/main.js`, the build users run (`npm start`, the image). */
  entry?: 'src' | 'dist'
  /** Where the child's own content folder is made, unless env.CONTENT_DIR names one. @defaultValue BENCH_CONTENT_BASE */
  contentBase?: string
}

/**
 * Where the bench's trawl processes keep bodies by default: tmpfs (/dev/shm) when the machine
 * has it, as the bodies-in-Redis runs before issue 8 kept them in memory, so that a workload
 * measures trawl and not the disk; `npm run bench -- --content-dir=DIR` measures a disk.
 */
export const BENCH_CONTENT_BASE = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()

export interface TrawlProcess {
  origin: string
  pid: number
  prefix: string
  rss: RssMonitor
  /**
   * GET ?wait=60 requests the server closed before answering (so far). Fastify's
   * connectionTimeout (10 s in src/app.ts) ends a long poll that lasts longer; waitFinal asks again.
   */
  waitDrops (): number
  /** Log lines at warn level or above written so far, and the last few of them. */
  warnings (): { count: number, last: string[] }
  submit (body: string): Promise<{ id: string, postMs: number }>
  waitFinal (id: string): Promise<JobDoc>
  cancel (id: string): Promise<void>
  /** DELETE ?purge=true: the job and its bodies go (an older checkout may only cancel it). */
  purge (id: string): Promise<void>
  /** Times one job from POST to its final state. */
  run (body: string): Promise<TrawlRun>
  stop (): Promise<void>
}

/** `node --import tsx src/main.ts all` as a child, ready (GET /readyz is 200) when this resolves. */
export async function startTrawl (opts: TrawlOptions): Promise<TrawlProcess> {
  const port = await freePort()
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    REDIS_URL: 'redis://127.0.0.1:6379',
    REDIS_PREFIX: opts.prefix,
    FETCH_ALLOW_CIDRS: '127.0.0.0/8',
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    WORKER_CONCURRENCY: String(opts.workerConcurrency),
    JOB_TTL_SECONDS: '900',
    SHUTDOWN_GRACE_MS: '1000',
    // Every workload but the hosts ones targets one host (127.0.0.1): no per-host cap there.
    HOST_CONCURRENCY: '0',
    // Bodies go to a folder of this process's own, removed when it stops (unless given).
    ...(opts.env?.CONTENT_DIR === undefined ? { CONTENT_DIR: mkdtempSync(join(opts.contentBase ?? BENCH_CONTENT_BASE, 'trawl-bench-content-')) } : {}),
    ...opts.env
  }
  const child: ChildProcess = track(spawn(process.execPath, [...(opts.nodeArgs ?? []), ...(opts.entry === 'dist' ? ['dist/main.js'] : ['--import', 'tsx', 'src/main.ts']), opts.role ?? 'all'], {
    cwd: opts.root ?? ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe']
  }))
  let warnCount = 0
  const last: string[] = []
  const collect = (chunk: Buffer): void => {
    for (const line of chunk.toString().split('\n')) {
      if (line.trim() === '') continue
      warnCount++
      last.push(line.slice(0, 500))
      if (last.length > 5) last.shift()
    }
  }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)

  const origin = `http://127.0.0.1:${port}`
  const agent = new Agent({ connections: 8, keepAliveTimeout: 30_000 })

  const exited = once(child, 'exit')
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`trawl exited (${child.exitCode ?? child.signalCode}) before it was ready: ${last.join('\n')}`)
    }
    try {
      const res = await request(`${origin}/readyz`, { dispatcher: agent })
      await res.body.dump()
      if (res.statusCode === 200) break
    } catch {}
    if (Date.now() > deadline) throw new Error('trawl was not ready within 30 s')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }

  const rss = new RssMonitor(child.pid ?? -1)

  async function json<T> (method: 'GET' | 'POST' | 'DELETE', path: string, body?: string): Promise<{ status: number, data: T }> {
    const res = await request(origin + path, {
      dispatcher: agent,
      method,
      ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }),
      headersTimeout: 90_000,
      bodyTimeout: 90_000
    })
    const text = await res.body.text()
    return { status: res.statusCode, data: JSON.parse(text) as T }
  }

  async function submit (body: string): Promise<{ id: string, postMs: number }> {
    const t0 = performance.now()
    const res = await json<JobDoc>('POST', '/jobs', body)
    const postMs = performance.now() - t0
    if (res.status !== 202) throw new Error(`POST /jobs answered ${res.status}: ${JSON.stringify(res.data).slice(0, 500)}`)
    return { id: res.data.id, postMs }
  }

  let drops = 0
  async function waitFinal (id: string): Promise<JobDoc> {
    const limit = Date.now() + 180_000
    for (;;) {
      let res: { status: number, data: JobDoc }
      try {
        res = await json<JobDoc>('GET', `/jobs/${id}?wait=60&results=none`)
      } catch (err) {
        const code = (err as { code?: unknown }).code
        if (code !== 'UND_ERR_SOCKET' || Date.now() > limit) throw err
        drops++
        continue
      }
      if (res.status !== 200) throw new Error(`GET /jobs/${id} answered ${res.status}`)
      if (FINAL_JOB_STATES.has(res.data.state)) return res.data
      if (Date.now() > limit) throw new Error(`job ${id} not finished within 180 s`)
    }
  }

  async function purge (id: string): Promise<void> {
    await json<unknown>('DELETE', `/jobs/${id}?purge=true`)
  }

  async function cancel (id: string): Promise<void> {
    const res = await json<unknown>('DELETE', `/jobs/${id}`)
    if (res.status !== 200 && res.status !== 409) throw new Error(`DELETE /jobs/${id} answered ${res.status}`)
  }

  async function run (body: string): Promise<TrawlRun> {
    const t0 = performance.now()
    const { id, postMs } = await submit(body)
    const doc = await waitFinal(id)
    const ms = performance.now() - t0
    const jobMs = doc.finishedAt === null ? NaN : Date.parse(doc.finishedAt) - Date.parse(doc.createdAt)
    return { ms, postMs, jobMs, doc }
  }

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => (stopping ??= (async () => {
    rss.stop()
    await agent.close().catch(() => {})
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
    if (opts.env?.CONTENT_DIR === undefined) rmSync(env.CONTENT_DIR ?? '', { recursive: true, force: true })
  })())

  return {
    origin,
    pid: child.pid ?? -1,
    prefix: opts.prefix,
    rss,
    warnings: () => ({ count: warnCount, last: [...last] }),
    waitDrops: () => drops,
    submit,
    waitFinal,
    cancel,
    purge,
    run,
    stop
  }
}
