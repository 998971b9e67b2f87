import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { startGateServer } from '../helpers/gate-server.js'
import { TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { injectedProblem, keysUnder } from '../helpers/security.js'
import { startTrawl } from '../helpers/trawl.js'

// Per-tenant limits: submissions per minute, shared by every API process through Redis, and URLs
// accepted and not yet finished.

const KEY_A = 'tenant-a-key-7d1f0c9e5b2a4c68'
const KEY_B = 'tenant-b-key-93e4a1f6c0d27b85'
const API_KEYS = `team-a:${KEY_A},team-b:${KEY_B}`
const AS_A = { authorization: `Bearer ${KEY_A}` }
const AS_B = { authorization: `Bearer ${KEY_B}` }

function connect (t: Test): Redis {
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  return redis
}

const submit = (headers: Record<string, string>, urls: string[], options: Record<string, unknown> = {}) =>
  ({ method: 'POST' as const, url: '/jobs', headers, payload: { urls, options } })

t.test('RATE_LIMIT_PER_MINUTE counts a tenant\'s submissions across every API process', async (t) => {
  const prefix = testPrefix(t, 'rate')
  const env = { API_KEYS, RATE_LIMIT_PER_MINUTE: '3' }
  const one = await startTrawl(t, { worker: false, prefix, env })
  const two = await startTrawl(t, { worker: false, prefix, env })
  const redis = connect(t)
  const urls = ['http://127.0.0.1:9/a']

  const accepted = [
    await one.api.app.inject(submit(AS_A, urls)),
    await two.api.app.inject(submit(AS_A, urls)),
    await one.api.app.inject(submit(AS_A, urls))
  ]
  t.same(accepted.map((r) => r.statusCode), [202, 202, 202], 'three submissions, spread over two APIs, are accepted')

  for (const [name, app] of [['the second API', two.api.app], ['the first API', one.api.app]] as const) {
    const res = await app.inject(submit(AS_A, urls))
    injectedProblem(t, res, { status: 429, code: 'RATE_LIMITED' }, `the fourth submission, on ${name}`)
    const retryAfter = Number(res.headers['retry-after'])
    t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `a numeric Retry-After of 1-60 s (${res.headers['retry-after']})`)
  }
  t.equal((await one.api.app.inject(submit(AS_B, urls))).statusCode, 202, 'another tenant is not limited')
  t.equal((await two.api.app.inject(submit(AS_B, urls))).statusCode, 202)
  t.equal((await one.api.app.inject({ url: `/jobs/${accepted[0]?.json().id}`, headers: AS_A })).statusCode, 200, 'reads are not counted against the limit')
  t.equal((await keysUnder(redis, `${prefix}:job:*:meta`)).length, 5, 'a limited submission creates nothing')
})

t.test('MAX_PENDING_URLS_PER_TENANT caps URLs accepted and not yet finished', async (t) => {
  const gate = await startGateServer(200)
  t.teardown(gate.close)
  const { api, prefix } = await startTrawl(t, { env: { API_KEYS, MAX_PENDING_URLS_PER_TENANT: '4' } })
  const app = api.app
  const redis = connect(t)
  const pending = async (tenant: string) => Number(await redis.get(`${prefix}:tenant:${tenant}:pending`) ?? 0)
  const hold = (n: number, tag: string) => Array.from({ length: n }, (_, i) => gate.url(`/hold/${tag}-${i}`))
  const fast = (n: number, tag: string) => Array.from({ length: n }, (_, i) => gate.url(`/fast/${tag}-${i}`))
  const finished = async (id: string) => (await app.inject({ url: `/jobs/${id}?wait=20&results=none`, headers: AS_A })).json()

  const held = await app.inject(submit(AS_A, hold(3, 'held'), { concurrency: 3 }))
  t.equal(held.statusCode, 202)
  await gate.untilWaiting(3)
  t.equal(await pending('team-a'), 3)

  const over = await app.inject(submit(AS_A, fast(2, 'over')))
  injectedProblem(t, over, { status: 429, code: 'TOO_MANY_PENDING_URLS' }, 'three pending and two more')
  t.match(over.headers['retry-after'], /^\d+$/, 'with a numeric Retry-After')
  const exact = await app.inject(submit(AS_A, fast(1, 'exact')))
  t.equal(exact.statusCode, 202, 'three pending and one more is exactly the cap')
  t.equal((await finished(exact.json().id)).state, 'completed')
  t.equal(await pending('team-a'), 3, 'a finished URL no longer counts')
  t.equal((await app.inject(submit(AS_B, fast(4, 'b')))).statusCode, 202, 'another tenant has a cap of its own')

  const tooBig = await app.inject(submit(AS_A, fast(5, 'big')))
  t.ok(tooBig.statusCode >= 400 && tooBig.statusCode < 500, `a job larger than the cap itself is refused (${tooBig.statusCode} ${tooBig.json().code})`)

  gate.open()
  t.equal((await finished(held.json().id)).state, 'completed')
  t.equal(await pending('team-a'), 0, 'every URL of the held job counted down once')
  const refill = await app.inject(submit(AS_A, fast(4, 'refill')))
  t.equal(refill.statusCode, 202, 'once the job has finished the tenant may submit again')
  t.equal((await finished(refill.json().id)).state, 'completed')

  // A cancelled job frees its URLs at once, fetches in flight included.
  gate.shut()
  const cancelled = await app.inject(submit(AS_A, hold(4, 'cancel'), { concurrency: 2 }))
  t.equal(cancelled.statusCode, 202)
  await gate.untilWaiting(2)
  injectedProblem(t, await app.inject(submit(AS_A, fast(1, 'blocked'))), { status: 429, code: 'TOO_MANY_PENDING_URLS' }, 'four pending, one more')
  t.equal((await app.inject({ method: 'DELETE', url: `/jobs/${cancelled.json().id}`, headers: AS_A })).statusCode, 200)
  t.equal(await pending('team-a'), 0, 'a cancel counts down every unfinished URL')
  await gate.untilAborted(2)
  t.equal(await pending('team-a'), 0, 'and the aborted fetches do not count down a second time')
  gate.open()
  const afterCancel = await app.inject(submit(AS_A, fast(4, 'after-cancel')))
  t.equal(afterCancel.statusCode, 202, 'after the cancel the tenant may submit again')
  t.equal((await finished(afterCancel.json().id)).state, 'completed')
  t.equal(await pending('team-a'), 0)
  t.equal(await pending('team-b'), 0)
})
