/**
 * The host rules end to end through the API and a real worker in this process: targets on
 * several loopback addresses (127.0.0.x are different hosts) that record their in-flight peak.
 */
import type http from 'node:http'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import type { JobDocument } from '../../src/jobs/schemas.js'
import { eventually } from '../helpers/eventually.js'
import { TEST_REDIS_URL } from '../helpers/redis.js'
import { startTrawl } from '../helpers/trawl.js'
import { hold, startTarget, worker } from './helpers.js'

type Api = Awaited<ReturnType<typeof startTrawl>>['api']

async function submit (api: Api, urls: string[], options: Record<string, unknown>): Promise<JobDocument> {
  const res = await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls, options: { keepContent: false, ...options } } })
  if (res.statusCode !== 202) throw new Error(`POST /jobs answered ${res.statusCode}: ${res.body}`)
  return res.json()
}
const read = async (api: Api, id: string, query = ''): Promise<JobDocument> => (await api.app.inject(`/jobs/${id}?limit=1000${query}`)).json()
const finished = (api: Api, id: string) => read(api, id, '&wait=60')

t.test('no head-of-line blocking: a job on hosts A and B keeps both at their cap at once', async (t) => {
  const seen = { both: false }
  const targets: Array<Awaited<ReturnType<typeof startTarget>>> = []
  // Each request is held until both hosts have their two in flight (or 3 s pass).
  const handle = async (_req: http.IncomingMessage, res: http.ServerResponse) => {
    const deadline = Date.now() + 3000
    while (Date.now() < deadline && !seen.both) {
      if (targets.every((x) => x.inFlight >= 2)) seen.both = true
      else await hold(10)
    }
    res.end('ok')
  }
  targets.push(await startTarget(t, handle, '127.0.0.3'), await startTarget(t, handle, '127.0.0.4'))
  const [a, b] = targets as [typeof targets[0], typeof targets[0]]
  const { api } = await startTrawl(t, { env: { HOST_CONCURRENCY: '2' } })
  // Every URL on A comes first: a lane waiting for A would hold B back.
  const urls = [...Array.from({ length: 20 }, (_, i) => `${a.origin}/a/${i}`), ...Array.from({ length: 10 }, (_, i) => `${b.origin}/b/${i}`)]
  const job = await submit(api, urls, { concurrency: 10 })
  const waiting = await eventually(async () => {
    const doc = await read(api, job.id)
    return doc.results?.some((r) => r.waitingFor === 'host') && doc
  }, { what: 'a URL shows that it waits for its host' })
  t.ok(waiting.results?.every((r) => r.waitingFor === null || r.state === 'pending'), 'waitingFor only on pending URLs')
  const done = await finished(api, job.id)
  t.equal(done.counts.succeeded, 30)
  t.ok(seen.both, 'both hosts had two fetches in flight at the same time')
  t.equal(a.peak, 2, 'host A: at most its cap')
  t.equal(b.peak, 2, 'host B: at most its cap')
  t.ok(done.results?.every((r) => r.attempts === 1 && r.waitingFor === null), 'waiting cost no attempt')
})

t.test('options.hostConcurrency lowers the cap for one job', async (t) => {
  const target = await startTarget(t, async (_req, res) => { await hold(30); res.end('ok') }, '127.0.0.5')
  const { api } = await startTrawl(t, { env: { HOST_CONCURRENCY: '8' } })
  const job = await submit(api, Array.from({ length: 20 }, (_, i) => `${target.origin}/${i}`), { concurrency: 10, hostConcurrency: 3 })
  const done = await finished(api, job.id)
  t.equal(done.counts.succeeded, 20)
  t.equal(done.options.hostConcurrency, 3, 'the job document shows it')
  t.equal(target.peak, 3, 'three at most, and three used')
})

t.test('429 with Retry-After pauses the host for every job; the URL is fetched again without spending a retry', async (t) => {
  const starts: Array<{ path: string, at: number }> = []
  let limited = 0
  let answered429 = 0
  const target = await startTarget(t, async (req, res) => {
    starts.push({ path: req.url ?? '', at: Date.now() })
    if (req.url === '/limited' && limited++ === 0) {
      answered429 = Date.now()
      res.writeHead(429, { 'retry-after': '2' }).end('slow down')
      return
    }
    await hold(20)
    res.end('ok')
  }, '127.0.0.6')
  const { api } = await startTrawl(t, { env: { HOST_CONCURRENCY: '8' } })
  const first = await submit(api, [`${target.origin}/limited`, ...Array.from({ length: 4 }, (_, i) => `${target.origin}/one/${i}`)], { concurrency: 1, retries: 0 })
  const paused = await eventually(async () => {
    const doc = await read(api, first.id)
    return doc.results?.[0]?.waitingFor === 'pause' && doc
  }, { what: 'the 429 URL shows that it waits for a pause' })
  t.equal(paused.results?.[0]?.state, 'pending')
  const second = await submit(api, Array.from({ length: 3 }, (_, i) => `${target.origin}/two/${i}`), { concurrency: 3 })
  const [a, b] = [await finished(api, first.id), await finished(api, second.id)]
  t.equal(a.counts.succeeded + b.counts.succeeded, 8, 'every URL of both jobs succeeded')
  t.same({ state: a.results?.[0]?.state, status: a.results?.[0]?.status, attempts: a.results?.[0]?.attempts }, { state: 'succeeded', status: 200, attempts: 2 },
    'the 429 URL: two real fetches with retries: 0, so the pause spent no retry')
  const during = starts.filter((s) => s.at > answered429 && s.at < answered429 + 1900)
  t.same(during, [], 'no request reached the host during the pause, from either job')
  t.ok(starts.filter((s) => s.at >= answered429 + 1900).length === 8, 'then all eight')
})

t.test('a 429 pauses the host for a lane that kept its slot too; trawl_hosts_paused counts the host while its URLs wait', async (t) => {
  const starts: Array<{ path: string, at: number }> = []
  let answered429 = 0
  const target = await startTarget(t, async (req, res) => {
    starts.push({ path: req.url ?? '', at: Date.now() })
    if (answered429 === 0) {
      answered429 = Date.now()
      res.writeHead(429, { 'retry-after': '2' }).end('slow down')
      return
    }
    res.end('ok')
  }, '127.0.0.12')
  const { api, worker } = await startTrawl(t, { env: { HOST_CONCURRENCY: '8' } })
  const registry = worker?.metrics.registry
  if (registry === undefined) throw new Error('no worker')
  const gauge = async () => Number(/^trawl_hosts_paused\{[^}]*\} (\d+)$/m.exec(await registry.metrics())?.[1] ?? NaN)
  t.equal(await gauge(), 0, 'no host paused before the job')
  // Two lanes: the one that did not meet the 429 keeps its slot from fetch to fetch.
  const job = await submit(api, Array.from({ length: 6 }, (_, i) => `${target.origin}/${i}`), { concurrency: 2, retries: 0 })
  await eventually(async () => await gauge() === 1, { what: 'trawl_hosts_paused shows the paused host' })
  t.pass('the paused host is counted while its URLs wait')
  const done = await finished(api, job.id)
  t.equal(done.counts.succeeded, 6)
  const during = starts.filter((s) => s.at > answered429 && s.at < answered429 + 1900)
  t.ok(during.length <= 1, `during the pause at most a fetch whose slot was granted before it: ${JSON.stringify(during.map((s) => s.path))}`)
  t.equal(await gauge(), 0, 'and no longer once the pause is over')
})

t.test('429 without Retry-After: pauses that grow while they repeat', async (t) => {
  const starts: number[] = []
  const target = await startTarget(t, (req, res) => {
    starts.push(Date.now())
    if (starts.length <= 3) res.writeHead(429).end('slow down')
    else res.end('ok')
  }, '127.0.0.7')
  const { api } = await startTrawl(t, { env: { HOST_CONCURRENCY: '8' } })
  const job = await submit(api, [`${target.origin}/x`], { retries: 0 })
  const done = await finished(api, job.id)
  t.equal(done.results?.[0]?.state, 'succeeded')
  t.equal(done.results?.[0]?.attempts, 4, 'three 429s and the 200: four real fetches, no retry spent')
  const gaps = starts.slice(1).map((at, i) => at - (starts[i] as number))
  t.ok((gaps[0] ?? 0) >= 900, `first pause about 1 s (${gaps[0]} ms)`)
  t.ok((gaps[1] ?? 0) >= 1900 && (gaps[1] ?? 0) > (gaps[0] ?? 0), `second about 2 s, longer (${gaps[1]} ms)`)
  t.ok((gaps[2] ?? 0) >= 3900, `third about 4 s (${gaps[2]} ms)`)
})

t.test('without a cap (HOST_CONCURRENCY=0) a 429 still pauses the host', async (t) => {
  const starts: number[] = []
  const target = await startTarget(t, (_req, res) => {
    starts.push(Date.now())
    if (starts.length === 1) res.writeHead(503, { 'retry-after': '1' }).end('busy')
    else res.end('ok')
  }, '127.0.0.8')
  const { api } = await startTrawl(t, { env: { HOST_CONCURRENCY: '0' } })
  const job = await submit(api, Array.from({ length: 4 }, (_, i) => `${target.origin}/${i}`), { concurrency: 1, retries: 0 })
  const done = await finished(api, job.id)
  t.equal(done.counts.succeeded, 4)
  t.ok((starts[1] ?? 0) - (starts[0] ?? 0) >= 900, `the next fetch waited for the pause (${(starts[1] ?? 0) - (starts[0] ?? 0)} ms)`)
})

t.test('a job waiting on one full host sends few Redis commands while it waits', async (t) => {
  const target = await startTarget(t, (_req, res) => { res.end('ok') }, '127.0.0.9')
  const { api, prefix } = await startTrawl(t, { env: { HOST_CONCURRENCY: '2', LANE_SLICE_MS: '20000' } })
  // Another worker holds both slots (a gate of the test's own, renewing its leases).
  const holder = await worker(t, prefix)
  const leases = [await holder.gate.enter('127.0.0.9', { limit: 2, delayMs: 0 }), await holder.gate.enter('127.0.0.9', { limit: 2, delayMs: 0 })]
  const job = await submit(api, Array.from({ length: 20 }, (_, i) => `${target.origin}/${i}`), { concurrency: 5 })
  await eventually(async () => (await read(api, job.id)).results?.every((r) => r.waitingFor === 'host'), { what: 'every URL parked, waiting for the host' })
  const counted = await countCommands(t, prefix, 1500)
  // What remains is BullMQ's lock renewals and stalled check and the cancel watch's HGET.
  t.ok(counted.length < 20, `${counted.length} commands under the prefix in 1.5 s while it waits: ${summary(counted)}`)
  t.same(counted.filter((c) => /^eval(sha)? job:|host:/.test(c)), [], 'no step (a lane\'s claim) and no host script among them')
  t.equal(target.hits.size, 0, 'nothing reached the full host')
  for (const lease of leases) await holder.gate.leave(lease, { kind: 'ok' })
  const done = await finished(api, job.id)
  t.equal(done.counts.succeeded, 20, 'once the slots came free, every URL was fetched')
})

/**
 * The commands clients send with an argument under `prefix` during `ms`, as Redis' MONITOR
 * sees them: the command and its first key; the commands scripts run inside are left out.
 */
async function countCommands (t: Test, prefix: string, ms: number): Promise<string[]> {
  const base = new Redis(TEST_REDIS_URL)
  const m = await base.monitor()
  t.teardown(() => { m.disconnect(); base.disconnect() })
  const seen: string[] = []
  m.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua' && args.some((a) => a.includes(prefix))) seen.push(`${(args[0] ?? '').toLowerCase()} ${args.find((a) => a.startsWith(prefix))?.slice(prefix.length + 1) ?? ''}`)
  })
  await hold(ms)
  m.removeAllListeners('monitor')
  return seen
}

function summary (commands: string[]): string {
  const counts = new Map<string, number>()
  for (const c of commands) {
    const name = c.replace(/\{j_\w+\}/, '{id}').replace(/:j_\w+-\d+/, ':<lane>')
    counts.set(name, (counts.get(name) ?? 0) + 1)
  }
  return [...counts].map(([c, n]) => `${c} x${n}`).join(', ') || 'none'
}
