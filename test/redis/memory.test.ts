import { randomBytes } from 'node:crypto'
import { EventEmitter, once } from 'node:events'
import { Writable } from 'node:stream'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { parseMemoryInfo } from '../../src/redis/memory.js'
import { isRedisOom } from '../../src/redis/oom.js'
import { eventually, within } from '../helpers/eventually.js'
import { startGateServer } from '../helpers/gate-server.js'
import { startPrivateRedis } from '../helpers/redis-server.js'
import { injectedProblem } from '../helpers/security.js'
import { startTrawl } from '../helpers/trawl.js'

// A Redis of the test's own with `maxmemory` and `noeviction` (as BullMQ asks), filled with the
// test's own filler keys: near full, trawl refuses new jobs and says it is not ready; full, the
// lanes of a running job wait, keep their locks, and go on once the filler is deleted.

const MAXMEMORY = 32 * 1024 * 1024
const CHUNK = Buffer.alloc(512 * 1024, 'f')

t.test('INFO memory: near full from 90 % of maxmemory; no maxmemory, never', async (t) => {
  t.match(parseMemoryInfo('# Memory\r\nused_memory:900\r\nused_memory_human:900B\r\nmaxmemory:1000\r\n'), { used: 900, max: 1000, nearFull: true })
  t.match(parseMemoryInfo('used_memory:899\r\nmaxmemory:1000\r\n'), { nearFull: false })
  t.match(parseMemoryInfo('used_memory:123456789\r\nmaxmemory:0\r\n'), { max: 0, ratio: 0, nearFull: false })
})

/** A private Redis with a small maxmemory, and a connection of the test's own to fill it. */
async function smallRedis (t: Test) {
  const server = await startPrivateRedis(t)
  const admin = new Redis(server.url)
  t.teardown(() => admin.disconnect())
  // No append-only file: the filler is throwaway, and fsyncing it would only slow the test.
  await admin.config('SET', 'appendonly', 'no')
  await admin.config('SET', 'maxmemory-policy', 'noeviction')
  await admin.config('SET', 'maxmemory', String(MAXMEMORY))
  let n = 0
  const memory = async () => parseMemoryInfo(await admin.info('memory'))
  return {
    url: server.url,
    admin,
    memory,
    /** Adds filler until `enough` says so. */
    async fill (enough: () => Promise<boolean>) {
      while (!await enough()) await admin.set(`filler:${n++}`, CHUNK)
    },
    /**
     * Fills Redis past its maxmemory: filler to 95 %, then maxmemory lowered a little below what
     * is used, so that small frees (client buffers) cannot let a write slip through meanwhile.
     * Deleting the filler (empty()) makes room again under the lowered limit.
     */
    async fillToOom () {
      while ((await memory()).ratio < 0.95) await admin.set(`filler:${n++}`, CHUNK)
      await admin.config('SET', 'maxmemory', String(Math.floor((await memory()).used * 0.96)))
      const refused = await admin.set('probe', 'x').then(() => null, (err: unknown) => err)
      if (!isRedisOom(refused)) throw new Error(`Redis is not full: SET answered ${String(refused)}`)
    },
    async empty () {
      const keys = await admin.keys('filler:*')
      if (keys.length > 0) await admin.del(...keys)
    }
  }
}

/** A logger that tells when a line with a given message was written. */
function watchedLogger () {
  const seen = new EventEmitter()
  const messages: string[] = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) {
        if (line === '') continue
        const msg = String((JSON.parse(line) as { msg?: unknown }).msg)
        messages.push(msg)
        seen.emit('line', msg)
      }
      done()
    }
  })
  const until = (pattern: RegExp) => new Promise<void>((resolve) => {
    if (messages.some((m) => pattern.test(m))) return resolve()
    const onLine = (msg: string) => {
      if (!pattern.test(msg)) return
      seen.off('line', onLine)
      resolve()
    }
    seen.on('line', onLine)
  })
  return { logger: pino({ level: 'info' }, stream), messages, until }
}

t.test('near full: POST /jobs 503 with Retry-After and /readyz 503; freed, both recover by themselves', async (t) => {
  const redis = await smallRedis(t)
  const gate = await startGateServer(100)
  t.teardown(gate.close)
  const { api } = await startTrawl(t, { prefix: `trawl-mem-${randomBytes(4).toString('hex')}`, env: { REDIS_URL: redis.url } })
  const app = api.app
  t.equal((await app.inject('/readyz')).statusCode, 200, 'ready before the filler')

  await redis.fill(async () => (await redis.memory()).ratio >= 0.92)
  const m = await redis.memory()
  t.ok(m.ratio < 1, `filled to ${(m.ratio * 100).toFixed(1)} %: near full, not yet refusing writes`)
  const post = () => app.inject({ method: 'POST', url: '/jobs', payload: { urls: [gate.url('/fast/0'), gate.url('/fast/1')], options: { keepContent: false } } })
  // The API reads INFO memory at most once a second: the refusal may take that long to show.
  const refused = await eventually(async () => { const r = await post(); return r.statusCode === 503 && r }, { what: 'POST /jobs is refused', timeoutMs: 3000 })
  const problem = injectedProblem(t, refused, { status: 503, code: 'UNAVAILABLE' }, 'POST /jobs near full')
  t.match(problem.detail, /Redis is near full/)
  t.match(refused.headers['retry-after'], /^[1-9]\d*$/, 'with a Retry-After')
  const jobKeys = await redis.admin.keys('trawl-mem-*:job:*')
  injectedProblem(t, await post(), { status: 503, code: 'UNAVAILABLE' }, 'POST /jobs near full, again')
  t.same(await redis.admin.keys('trawl-mem-*:job:*'), jobKeys, 'a refused submission writes nothing')
  const ready = await app.inject('/readyz')
  injectedProblem(t, ready, { status: 503, code: 'UNAVAILABLE' }, '/readyz near full')
  t.match(ready.headers['retry-after'], /^[1-9]\d*$/)
  t.equal((await app.inject('/healthz')).statusCode, 200, '/healthz: the process runs')

  await redis.empty()
  const accepted = await eventually(async () => { const r = await post(); return r.statusCode === 202 && r }, { what: 'POST /jobs is accepted again', timeoutMs: 3000 })
  t.equal((await app.inject('/readyz')).statusCode, 200, 'ready again')
  const done = (await app.inject(`/jobs/${accepted.json<{ id: string }>().id}?wait=20`)).json()
  t.equal(done.state, 'completed', 'the job accepted afterwards completes')
  t.same(done.counts, { pending: 0, running: 0, succeeded: 2, failed: 0, cancelled: 0 })
})

t.test('full mid-job: lanes wait for memory and keep their locks, then finish every URL once', async (t) => {
  const redis = await smallRedis(t)
  const gate = await startGateServer(1000)
  t.teardown(gate.close)
  const logs = watchedLogger()
  // Locks of 2 s (testEnv): the wait below outlasts them, so only renewed locks survive it.
  const prefix = `trawl-mem-${randomBytes(4).toString('hex')}`
  const { api, worker } = await startTrawl(t, { prefix, env: { REDIS_URL: redis.url }, logger: logs.logger })
  const lanes = worker?.workers.worker
  if (lanes === undefined) throw new Error('no worker')
  const failed: string[] = []
  lanes.on('failed', (_job, err) => failed.push(err.message))
  // The worker also emits 'error' while Redis is full (its stalled check is refused), so the
  // renewals are counted with a listener rather than awaited with once().
  let renewals = 0
  const renewed = new EventEmitter()
  lanes.on('locksRenewed', () => { renewals++; renewed.emit('renewed') })
  const untilRenewals = async (n: number) => {
    for (;;) {
      if (renewals >= n) return
      await once(renewed, 'renewed')
    }
  }
  const app = api.app
  const urls = Array.from({ length: 20 }, (_, i) => gate.url(`/hold/${i}`))
  const submitted = await app.inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 3, retries: 0, keepContent: false } } })
  t.equal(submitted.statusCode, 202)
  const id = submitted.json<{ id: string }>().id
  await gate.untilWaiting(3)
  await redis.fillToOom()
  // The three fetches in flight finish now; their results meet a full Redis.
  gate.open()
  await logs.until(/Redis is at its maxmemory/)
  t.pass('the lanes met the full Redis and wait')
  // Four renewals under OOM take about 4 s, twice the locks' 2 s: each was kept by keep-locks.lua.
  t.not(await within(10_000, untilRenewals(renewals + 4)), 'late', 'the locks were renewed four times while Redis was full')
  const active = await redis.admin.lrange(`${prefix}:fetch:active`, 0, -1)
  t.equal(active.length, 3, 'three lanes active')
  for (const lane of active) t.ok(await redis.admin.pttl(`${prefix}:fetch:${lane}:lock`) > 0, `lane ${lane} still holds its lock`)
  // A full Redis refuses every MULTI, reads too: the API answers 503, the test reads the hash.
  injectedProblem(t, await app.inject(`/jobs/${id}?results=none`), { status: 503, code: 'UNAVAILABLE' }, 'GET /jobs/:id while Redis is full')
  const meta = await redis.admin.hgetall(`${prefix}:job:{${id}}:meta`)
  t.equal(meta.state, 'running', 'the job still runs')
  t.equal(meta.failed, '0', 'no URL failed')
  t.same(failed, [], 'no lane failed or stalled')

  await redis.empty()
  const done = (await app.inject(`/jobs/${id}?wait=30`)).json()
  t.equal(done.state, 'completed', 'the job completes once memory is free')
  t.same(done.counts, { pending: 0, running: 0, succeeded: 20, failed: 0, cancelled: 0 }, 'every URL succeeded, none twice')
  t.ok(done.results.every((r: { attempts: number }) => r.attempts === 1), 'waiting spent no attempt')
  t.equal(gate.served, 20, 'every URL was fetched exactly once')
  t.same(failed, [])
  await logs.until(/Redis has room again/)
  t.pass('the worker said it goes on')
})
