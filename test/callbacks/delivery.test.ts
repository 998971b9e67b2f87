import { once } from 'node:events'
import t from 'tap'
import { eventually } from '../helpers/eventually.js'
import { startGateServer } from '../helpers/gate-server.js'
import { startReceiver } from '../helpers/receiver.js'
import { testPrefix } from '../helpers/redis.js'
import { spawnTrawl, startTrawl, testEnv, waitForLog, type TestTrawl } from '../helpers/trawl.js'

const SECRET = 'test-secret-0123456789abcdef'

// The callback block settles a little after the job ends, with nothing to announce it: wait for
// it to leave `pending`.
async function settled (trawl: TestTrawl, id: string) {
  return await eventually(async () => {
    const doc = (await trawl.api.app.inject(`/jobs/${id}?results=none`)).json()
    return doc.callback?.state !== 'pending' && doc
  }, { what: `the callback of ${id} leaves pending`, timeoutMs: 20_000 })
}

async function submit (trawl: TestTrawl, urls: string[], callbackUrl: string) {
  const res = await trawl.api.app.inject({ method: 'POST', url: '/jobs', payload: { urls, callbackUrl } })
  if (res.statusCode !== 202) throw new Error(res.body)
  return res.json()
}

t.test('a 500 is retried with the same id and body; a 2xx ends it', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const receiver = await startReceiver(SECRET, (n) => (n <= 2 ? 500 : 204))
  t.teardown(receiver.close)
  const trawl = await startTrawl(t, { env: { CALLBACK_SECRET: SECRET, CALLBACK_RETRY_BASE_MS: '50' } })
  const job = await submit(trawl, [gate.url('/fast/1'), gate.url('/fast/2')], receiver.url())
  t.match(job.callback, { url: receiver.url(), state: 'pending', attempts: 0 })
  const doc = await settled(trawl, job.id)
  t.equal(doc.state, 'completed', 'the callback never changes the job state')
  t.same(doc.callback, { url: receiver.url(), state: 'delivered', attempts: 3, lastStatus: 204, lastError: null })
  t.equal(receiver.received.length, 3, 'two 500s, then one delivery, then nothing more')
  t.ok(receiver.received.every((r) => r.verified), 'every attempt is signed')
  t.same(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size, 1, 'webhook-id is the same on every retry')
  t.same(new Set(receiver.received.map((r) => r.body)).size, 1, 'the body is the same on every retry')
  const body = JSON.parse(receiver.received[0]?.body ?? '{}')
  t.equal(body.id, job.id)
  t.equal(body.state, 'completed')
  t.same(body.counts, { pending: 0, running: 0, succeeded: 2, failed: 0, cancelled: 0 })
  t.equal(body.results, undefined, 'the callback carries no results')
  t.equal(receiver.received[0]?.headers['content-type'], 'application/json')
})

t.test('a redirect is not followed and counts as a failed attempt', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const receiver = await startReceiver(SECRET, (_n, r) => (r.path === '/hook' ? { status: 307, location: '/elsewhere' } : 200))
  t.teardown(receiver.close)
  const trawl = await startTrawl(t, { env: { CALLBACK_SECRET: SECRET, CALLBACK_RETRY_BASE_MS: '20', CALLBACK_MAX_ATTEMPTS: '2' } })
  const job = await submit(trawl, [gate.url('/fast/1')], receiver.url('/hook'))
  const doc = await settled(trawl, job.id)
  t.match(doc.callback, { state: 'failed', attempts: 2, lastStatus: 307, lastError: /redirect not followed/ })
  t.same(receiver.received.map((r) => r.path), ['/hook', '/hook'], 'the redirect target was never called')
})

t.test('a callback to a blocked address is refused, without retries', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  // 127.0.0.2 is loopback like the target, but only 127.0.0.1 is opened to the guard.
  const receiver = await startReceiver(SECRET, () => 200, '127.0.0.2')
  t.teardown(receiver.close)
  const trawl = await startTrawl(t, { env: { CALLBACK_SECRET: SECRET, FETCH_ALLOW_CIDRS: '127.0.0.1/32', CALLBACK_RETRY_BASE_MS: '20' } })
  const job = await submit(trawl, [gate.url('/fast/1')], receiver.url())
  const doc = await settled(trawl, job.id)
  t.equal(doc.state, 'completed')
  t.match(doc.callback, { state: 'failed', attempts: 1, lastStatus: null, lastError: /^BLOCKED_ADDRESS/ })
  t.equal(receiver.received.length, 0, 'nothing reached the blocked address')
})

t.test('a cancelled job calls back too', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const receiver = await startReceiver(SECRET, () => 200)
  t.teardown(receiver.close)
  const trawl = await startTrawl(t, { env: { CALLBACK_SECRET: SECRET } })
  const job = await submit(trawl, [gate.url('/hold/1'), gate.url('/hold/2')], receiver.url())
  await gate.untilWaiting(2)
  await trawl.api.app.inject({ method: 'DELETE', url: `/jobs/${job.id}` })
  const doc = await settled(trawl, job.id)
  t.match(doc.callback, { state: 'delivered', attempts: 1 })
  t.equal(JSON.parse(receiver.received[0]?.body ?? '{}').state, 'cancelled')
})

t.test('a worker killed mid-delivery: another worker delivers', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const receiver = await startReceiver(SECRET, (n) => (n === 1 ? 'hold' : 200))
  t.teardown(receiver.close)
  const prefix = testPrefix(t, 'cbkill')
  const env = testEnv(prefix, { LOG_LEVEL: 'info', CALLBACK_SECRET: SECRET, WORKER_LOCK_MS: '2000' })
  const trawl = await startTrawl(t, { worker: false, prefix, env: { CALLBACK_SECRET: SECRET } })
  const first = spawnTrawl(t, 'worker', env)
  await waitForLog(first, /worker started/)
  const job = await submit(trawl, [gate.url('/fast/1')], receiver.url())
  await receiver.untilReceived(1)
  first.kill('SIGKILL')
  await once(first, 'exit')
  const second = spawnTrawl(t, 'worker', env)
  await waitForLog(second, /worker started/)
  await receiver.untilReceived(2)
  const doc = await settled(trawl, job.id)
  t.equal(doc.callback.state, 'delivered')
  t.ok(receiver.received.every((r) => r.verified))
  t.equal(receiver.received[1]?.headers['webhook-id'], receiver.received[0]?.headers['webhook-id'])
})
