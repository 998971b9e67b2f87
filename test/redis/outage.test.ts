import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { eventually } from '../helpers/eventually.js'
import { startGateServer } from '../helpers/gate-server.js'
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis-server.js'
import { injectedProblem } from '../helpers/security.js'
import { collect, openSse } from '../helpers/sse.js'
import { spawnTrawl, startTrawl, testEnv, waitForLog } from '../helpers/trawl.js'

// Redis goes away under a running API and worker and comes back on the same port with the same
// data. Meanwhile the API answers 503 at once and says it is not ready; afterwards everything
// carries on by itself, and the job accepted before the outage ends with every URL done once.

const SIZE = 1500

// Nothing announces that the API's connections are back: poll readiness, bounded.
async function untilReady (t: Test, app: FastifyInstance): Promise<void> {
  const started = Date.now()
  await eventually(async () => (await app.inject('/readyz')).statusCode === 200, { what: '/readyz is 200 again', timeoutMs: 15_000, intervalMs: 50 })
  t.pass(`/readyz is 200 again by itself (${Date.now() - started} ms after the restart)`)
}

/**
 * Registered after startTrawl, so it runs before trawl closes: should a test fail while Redis is
 * down, trawl still closes against a Redis that answers instead of hanging the teardown.
 */
function restartBeforeClose (t: Test, redis: PrivateRedis, app: FastifyInstance): void {
  t.teardown(async () => {
    if (redis.running) return
    await redis.start()
    // Best effort: the test has failed already; close as cleanly as Redis allows.
    await eventually(async () => (await app.inject('/readyz')).statusCode === 200, { what: '/readyz is 200 before closing', timeoutMs: 10_000, intervalMs: 50 }).catch(() => {})
  })
}

t.test('Redis down and back: 503 within 2 s meanwhile, then the job accepted before finishes', async (t) => {
  // Registered first, so it is torn down last: trawl closes while its Redis still answers.
  const redis = await startPrivateRedis(t)
  const gate = await startGateServer(SIZE)
  t.teardown(gate.close)
  const prefix = `trawl-outage-${randomBytes(4).toString('hex')}`
  const { api, worker } = await startTrawl(t, { prefix, env: { REDIS_URL: redis.url, WORKER_CONCURRENCY: '10' } })
  const app = api.app
  restartBeforeClose(t, redis, app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const urls = Array.from({ length: 8 }, (_, i) => gate.url(`/hold/${i}`))
  const submitted = await app.inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 3, retries: 0 } } })
  t.equal(submitted.statusCode, 202)
  const job = submitted.json<{ id: string }>()
  // A client following the job's events from before the outage to its end.
  const stream = await openSse(`${base}/jobs/${job.id}/events`)
  const followed = collect(stream)
  await gate.untilWaiting(3)

  await redis.stop()

  for (let i = 0; i < 3; i++) {
    const started = Date.now()
    const res = await app.inject({ method: 'POST', url: '/jobs', payload: { urls: [gate.url('/fast/late')] } })
    const took = Date.now() - started
    injectedProblem(t, res, { status: 503, code: 'UNAVAILABLE' }, `POST /jobs #${i + 1} while Redis is down`)
    t.match(res.headers['retry-after'], /^\d+$/, 'with a numeric Retry-After')
    t.ok(took < 2000, `answered within 2 s (${took} ms)`)
  }
  const started = Date.now()
  const read = await app.inject(`/jobs/${job.id}?wait=10`)
  injectedProblem(t, read, { status: 503, code: 'UNAVAILABLE' }, 'GET /jobs/:id?wait=10 while Redis is down')
  t.ok(Date.now() - started < 2000, `a waiting read does not hang either (${Date.now() - started} ms)`)
  injectedProblem(t, await app.inject({ method: 'DELETE', url: `/jobs/${job.id}` }), { status: 503, code: 'UNAVAILABLE' }, 'DELETE while Redis is down')
  injectedProblem(t, await app.inject({ url: `/jobs/${job.id}/events`, headers: { accept: 'text/event-stream' } }), { status: 503, code: 'UNAVAILABLE' }, 'a new event stream while Redis is down')
  injectedProblem(t, await app.inject('/readyz'), { status: 503, code: 'UNAVAILABLE' }, '/readyz while Redis is down')
  t.equal((await app.inject('/healthz')).statusCode, 200, '/healthz answers: the process runs')
  t.equal(gate.waiting, 3, 'the fetches in flight were left alone')

  await redis.start()
  await untilReady(t, app)

  const after = await app.inject({ method: 'POST', url: '/jobs', payload: { urls: [gate.url('/fast/after-0'), gate.url('/fast/after-1')] } })
  t.equal(after.statusCode, 202, 'the API takes jobs again')
  gate.open()

  const done = (await app.inject(`/jobs/${job.id}?wait=30`)).json()
  t.equal(done.state, 'completed', 'the job accepted before the outage finished')
  t.same(done.counts, { pending: 0, running: 0, succeeded: 8, failed: 0, cancelled: 0 }, 'every URL succeeded, none counted twice')
  t.equal(done.bytes, 8 * SIZE)
  t.same(done.results.map((r: { state: string }) => r.state), Array(8).fill('succeeded'))
  const second = (await app.inject(`/jobs/${after.json<{ id: string }>().id}?wait=30`)).json()
  t.equal(second.state, 'completed', 'a job accepted after the outage finishes too')
  t.same(second.counts, { pending: 0, running: 0, succeeded: 2, failed: 0, cancelled: 0 })
  t.ok(worker !== null && worker.workers.worker.isRunning(), 'the same worker carried on, never restarted')

  const events = await followed
  const results = events.filter((e) => e.event === 'result').map((e) => JSON.parse(e.data) as { index: number, state: string })
  t.same(results.map((r) => r.index).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7], 'the event stream open through the outage carried every result once')
  t.ok(results.every((r) => r.state === 'succeeded'))
  const last = events[events.length - 1]
  t.equal(last?.event, 'state')
  t.equal(JSON.parse(last?.data ?? '{}').state, 'completed', 'and ended with the final state')
})

t.test('an outage longer than the workers\' locks, with fetches finishing while Redis is away', async (t) => {
  const redis = await startPrivateRedis(t)
  const gate = await startGateServer(SIZE)
  t.teardown(gate.close)
  const prefix = `trawl-outage-${randomBytes(4).toString('hex')}`
  // Locks of 1 s: a three-second outage outlives every lock the worker held when it began.
  const { api } = await startTrawl(t, { prefix, env: { REDIS_URL: redis.url, WORKER_LOCK_MS: '1000' } })
  const app = api.app
  restartBeforeClose(t, redis, app)
  const urls = Array.from({ length: 10 }, (_, i) => gate.url(`/hold/${i}`))
  const job = (await app.inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 4, retries: 0 } } })).json<{ id: string }>()
  await gate.untilWaiting(4)

  await redis.stop()
  // The held fetches answer while Redis is away: their results wait in the worker.
  gate.open()
  injectedProblem(t, await app.inject({ method: 'POST', url: '/jobs', payload: { urls: [gate.url('/fast/x')] } }), { status: 503, code: 'UNAVAILABLE' }, 'POST while Redis is down')
  // The outage itself, not a wait for an event: long enough for every lock the worker held to lapse.
  await new Promise((resolve) => setTimeout(resolve, 3000))
  await redis.start()
  await untilReady(t, app)

  const res = await app.inject(`/jobs/${job.id}?wait=30`)
  t.equal(res.statusCode, 200)
  const done = res.json()
  t.equal(done.state, 'completed')
  t.same(done.counts, { pending: 0, running: 0, succeeded: 10, failed: 0, cancelled: 0 }, 'every URL succeeded, none counted twice')
  t.equal(done.bytes, 10 * SIZE)
  t.ok(done.results.every((r: { attempts: number }) => r.attempts === 1), 'a fetch finished during the outage was not done again')
})

t.test('SIGTERM while Redis is down: a worker process still exits promptly', async (t) => {
  const redis = await startPrivateRedis(t)
  const prefix = `trawl-outage-${randomBytes(4).toString('hex')}`
  const child = spawnTrawl(t, 'worker', testEnv(prefix, { REDIS_URL: redis.url, SHUTDOWN_GRACE_MS: '300', LOG_LEVEL: 'info' }))
  await waitForLog(child, /worker started/)
  await redis.stop()
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const started = Date.now()
  // The workers are closed by force SHUTDOWN_GRACE_MS + 5 s after SIGTERM; close-with-grace's own
  // deadline (SHUTDOWN_GRACE_MS + 10 s, exit status 1) must not be what ends the process.
  const code = await Promise.race([exited.then(([c]) => c as number | null), new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 8000).unref())])
  t.ok(code !== 'hung', `the worker exits within 8 s of SIGTERM (${code === 'hung' ? 'still running' : `${Date.now() - started} ms, status ${code}`})`)
  if (code !== 'hung') t.equal(code, 0, 'with status 0')
})
