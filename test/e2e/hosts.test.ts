import { once } from 'node:events'
import { Redis } from 'ioredis'
import t from 'tap'
import { createHostGate } from '../../src/hosts/gate.js'
import { createHostSlots } from '../../src/hosts/slots.js'
import type { JobDocument } from '../../src/jobs/schemas.js'
import { eventually } from '../helpers/eventually.js'
import { TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { spawnTrawl, startTrawl, testEnv, waitForLog } from '../helpers/trawl.js'
import { hold, startTarget } from '../hosts/helpers.js'

// The per-host cap across real worker processes (HOST_CONCURRENCY), and slots of a worker
// killed with kill -9.

t.test('three worker processes, two jobs of 40 URLs on one host at concurrency 40: the host never has more than 8', async (t) => {
  const target = await startTarget(t, async (_req, res) => { await hold(100); res.end('ok') }, '127.0.0.20')
  const prefix = testPrefix(t, 'hosts-e2e')
  const env = testEnv(prefix, { LOG_LEVEL: 'info', HOST_CONCURRENCY: '8' })
  const { api } = await startTrawl(t, { worker: false, prefix, env: { HOST_CONCURRENCY: '8' } })
  const workers = [1, 2, 3].map(() => spawnTrawl(t, 'worker', env))
  await Promise.all(workers.map((w) => waitForLog(w, /worker started/)))
  const ids = await Promise.all([0, 1].map(async (j) => {
    const urls = Array.from({ length: 40 }, (_, i) => `${target.origin}/${j}/${i}`)
    const res = await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 40, keepContent: false } } })
    return (res.json() as JobDocument).id
  }))
  const done = await Promise.all(ids.map(async (id) => (await api.app.inject(`/jobs/${id}?wait=60&results=none`)).json() as JobDocument))
  t.same(done.map((d) => d.counts.succeeded), [40, 40])
  t.comment(`the two jobs took ${done.map((d) => d.durationMs).join(' and ')} ms (ideal for 80 URLs at 8 at a time and 100 ms: 1000 ms)`)
  t.equal(target.hits.size, 80, 'every URL fetched once')
  t.equal(target.peak, 8, 'at most 8 in flight at the host at any instant, and 8 were used')
})

t.test('a worker killed with kill -9 while it holds host slots: they come free within WORKER_LOCK_MS', async (t) => {
  // Held until the connection goes: the killed worker's fetches never end by themselves.
  const target = await startTarget(t, (_req, res) => new Promise((resolve) => res.on('close', resolve)), '127.0.0.21')
  const prefix = testPrefix(t, 'hosts-kill')
  const lockMs = 1500
  const env = testEnv(prefix, { LOG_LEVEL: 'info', HOST_CONCURRENCY: '2', WORKER_LOCK_MS: String(lockMs) })
  const { api } = await startTrawl(t, { worker: false, prefix })
  const worker = spawnTrawl(t, 'worker', env)
  await waitForLog(worker, /worker started/)
  const urls = Array.from({ length: 4 }, (_, i) => `${target.origin}/${i}`)
  await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 4, keepContent: false, timeoutMs: 60_000 } } })
  await eventually(() => target.inFlight === 2, { what: 'two fetches in flight at the target', timeoutMs: 15_000 })
  const redis = new Redis(TEST_REDIS_URL)
  const subscriber = new Redis(TEST_REDIS_URL)
  t.teardown(() => { redis.disconnect(); subscriber.disconnect() })
  const gate = await createHostGate({ slots: createHostSlots(redis, { prefix }), subscriber, prefix, leaseMs: lockMs })
  t.teardown(() => gate.close())
  t.equal((await gate.state('127.0.0.21')).inFlight, 2, 'the worker holds both slots')
  worker.kill('SIGKILL')
  await once(worker, 'exit')
  const killed = performance.now()
  const lease = await gate.enter('127.0.0.21', { limit: 2, delayMs: 0 })
  const ms = performance.now() - killed
  t.ok(ms <= lockMs + 300, `a slot was free ${ms.toFixed(0)} ms after the kill (WORKER_LOCK_MS ${lockMs})`)
  await gate.leave(lease)
})
