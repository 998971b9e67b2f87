import { once } from 'node:events'
import t from 'tap'
import { startGateServer } from '../helpers/gate-server.js'
import { testPrefix } from '../helpers/redis.js'
import { spawnTrawl, startTrawl, testEnv, waitForLog } from '../helpers/trawl.js'

// Real worker processes: killed with SIGKILL or stopped with SIGTERM in the middle of a job.

t.test('kill -9 of a worker mid-job: a second worker takes over, every URL ends once', async (t) => {
  const gate = await startGateServer(2000)
  t.teardown(gate.close)
  const prefix = testPrefix(t, 'kill')
  const env = testEnv(prefix, { LOG_LEVEL: 'info', WORKER_CONCURRENCY: '10', WORKER_LOCK_MS: '2000' })
  const { api } = await startTrawl(t, { worker: false, prefix })
  const first = spawnTrawl(t, 'worker', env)
  await waitForLog(first, /worker started/)

  const urls = [...Array.from({ length: 10 }, (_, i) => gate.url(`/fast/${i}`)), ...Array.from({ length: 30 }, (_, i) => gate.url(`/hold/${i}`))]
  const job = (await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 5, keepContent: false } } })).json()
  await gate.untilWaiting(5)
  first.kill('SIGKILL')
  await once(first, 'exit')
  const mid = (await api.app.inject(`/jobs/${job.id}?results=none`)).json()
  t.equal(mid.state, 'running')
  t.equal(mid.counts.succeeded, 10)
  t.equal(mid.counts.running, 5, 'the dead worker\'s five URLs are still held, not lost')

  gate.open()
  const second = spawnTrawl(t, 'worker', env)
  await waitForLog(second, /worker started/)
  const done = (await api.app.inject(`/jobs/${job.id}?wait=60&limit=1000`)).json()
  t.equal(done.state, 'completed')
  t.same(done.counts, { pending: 0, running: 0, succeeded: 40, failed: 0, cancelled: 0 }, 'none lost, none counted twice')
  t.equal(done.bytes, 40 * 2000)
  t.ok(done.results.every((r: { state: string }) => r.state === 'succeeded'))
})

t.test('SIGTERM: a worker hands back its in-flight URLs and exits cleanly', async (t) => {
  const gate = await startGateServer(2000)
  t.teardown(gate.close)
  const prefix = testPrefix(t, 'term')
  const env = testEnv(prefix, { LOG_LEVEL: 'info', WORKER_CONCURRENCY: '10', SHUTDOWN_GRACE_MS: '300' })
  const { api } = await startTrawl(t, { worker: false, prefix })
  const first = spawnTrawl(t, 'worker', env)
  await waitForLog(first, /worker started/)

  const urls = Array.from({ length: 20 }, (_, i) => gate.url(`/hold/${i}`))
  const job = (await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 4 } } })).json()
  await gate.untilWaiting(4)
  first.kill('SIGTERM')
  const [code] = await once(first, 'exit')
  t.equal(code, 0, 'the worker exits with status 0')
  await gate.untilAborted(4)

  gate.open()
  const second = spawnTrawl(t, 'worker', env)
  await waitForLog(second, /worker started/)
  const done = (await api.app.inject(`/jobs/${job.id}?wait=60`)).json()
  t.equal(done.state, 'completed')
  t.same(done.counts, { pending: 0, running: 0, succeeded: 20, failed: 0, cancelled: 0 })
  t.ok(done.results.every((r: { attempts: number }) => r.attempts === 1), 'a handed-back fetch does not count as an attempt')
})

t.test('SIGTERM: fetches that finish within the grace period keep their bodies, and the worker exits cleanly', async (t) => {
  const gate = await startGateServer(2000)
  t.teardown(gate.close)
  const prefix = testPrefix(t, 'grace')
  const env = testEnv(prefix, { LOG_LEVEL: 'info', WORKER_CONCURRENCY: '10', SHUTDOWN_GRACE_MS: '10000' })
  const { api } = await startTrawl(t, { worker: false, prefix })
  const worker = spawnTrawl(t, 'worker', env)
  await waitForLog(worker, /worker started/)

  // A worker process owns its content store: it must stay open while the lanes drain.
  const urls = Array.from({ length: 4 }, (_, i) => gate.url(`/hold/${i}`))
  const job = (await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 4 } } })).json()
  await gate.untilWaiting(4)
  const shuttingDown = waitForLog(worker, /shutting down/)
  worker.kill('SIGTERM')
  await shuttingDown
  gate.open()
  const [code] = await once(worker, 'exit')
  t.equal(code, 0, 'the worker exits with status 0')

  const done = (await api.app.inject(`/jobs/${job.id}?wait=30`)).json()
  t.equal(done.state, 'completed')
  t.same(done.counts, { pending: 0, running: 0, succeeded: 4, failed: 0, cancelled: 0 }, 'every fetch finished in the grace period succeeded')
  for (const r of done.results) {
    if (typeof r.contentUrl !== 'string') {
      t.fail(`body ${r.index} was not kept: ${JSON.stringify(r.error)}`)
      continue
    }
    const content = await api.app.inject(r.contentUrl)
    t.equal(content.statusCode, 200, `body ${r.index} is stored`)
    t.equal(content.rawPayload.length, 2000)
  }
})

t.test('two API processes and two worker processes share one Redis', async (t) => {
  const gate = await startGateServer(500)
  t.teardown(gate.close)
  const prefix = testPrefix(t, 'share')
  const env = testEnv(prefix, { LOG_LEVEL: 'info', WORKER_CONCURRENCY: '5' })
  const apis = [spawnTrawl(t, 'api', { ...env, PORT: '0' }), spawnTrawl(t, 'api', { ...env, PORT: '0' })]
  const workers = [spawnTrawl(t, 'worker', env), spawnTrawl(t, 'worker', env)]
  const [a, b] = await Promise.all(apis.map(async (p) => String((await waitForLog(p, /trawl is up/)).address)))
  await Promise.all(workers.map((p) => waitForLog(p, /worker started/)))

  // Ten fetches in flight at once while each worker may run five: both workers are fetching.
  const urls = Array.from({ length: 30 }, (_, i) => gate.url(`/hold/${i}`))
  const submitted = await fetch(`${a}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ urls, options: { concurrency: 10 } }) })
  t.equal(submitted.status, 202)
  const job = await submitted.json() as { id: string }
  await gate.untilWaiting(10)
  const seenByB = await (await fetch(`${b}/jobs/${job.id}?results=none`)).json() as { state: string, counts: { running: number } }
  t.equal(seenByB.state, 'running', 'the second API reads the job the first one accepted')
  t.equal(seenByB.counts.running, 10)

  const waitOnB = fetch(`${b}/jobs/${job.id}?wait=30&results=none`)
  gate.open()
  const done = await (await waitOnB).json() as { state: string, counts: Record<string, number> }
  t.equal(done.state, 'completed', 'a wait on one API wakes when workers elsewhere finish the job')
  t.same(done.counts, { pending: 0, running: 0, succeeded: 30, failed: 0, cancelled: 0 })
})
