import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { Queue } from 'bullmq'
import type { LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { createIdempotencyKeys } from '../../src/tenants/idempotency.js'
import { TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { injectedProblem, keysUnder } from '../helpers/security.js'
import { startTrawl } from '../helpers/trawl.js'

// Idempotency-Key on POST /jobs: a retried submission gets the job the first one made, however
// the retries race, on however many API processes; the key is the tenant's own.

const KEY_A = 'tenant-a-key-7d1f0c9e5b2a4c68'
const KEY_B = 'tenant-b-key-93e4a1f6c0d27b85'
const API_KEYS = `team-a:${KEY_A},team-b:${KEY_B}`
const AS_A = { authorization: `Bearer ${KEY_A}` }
const AS_B = { authorization: `Bearer ${KEY_B}` }

const BODY = {
  urls: ['http://127.0.0.1:9/a', 'http://127.0.0.1:9/b', 'http://127.0.0.1:9/c'],
  options: { concurrency: 2, retries: 1, headers: { 'X-Trace': 'abc' } }
}
const LANES = 2

function connect (t: Test): Redis {
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  return redis
}

/** How many jobs, lanes and pending URLs the prefix holds: what a duplicate would change. */
async function census (redis: Redis, prefix: string, tenant = 'team-a') {
  return {
    jobs: (await keysUnder(redis, `${prefix}:job:*:meta`)).length,
    lanes: (await keysUnder(redis, `${prefix}:fetch:j_*-*`)).length,
    pending: Number(await redis.get(`${prefix}:tenant:${tenant}:pending`) ?? 0)
  }
}

function submit (headers: Record<string, string>, key: string | null, body: unknown = BODY) {
  return { method: 'POST' as const, url: '/jobs', headers: { ...headers, ...(key === null ? {} : { 'idempotency-key': key }) }, payload: body as Record<string, unknown> }
}

/** One 202, and every other answer a 200 with the same job or a 409 IDEMPOTENCY_IN_PROGRESS. */
function checkRace (t: Test, answers: Array<{ status: number, headers: Record<string, string | undefined>, body: Record<string, unknown> }>, what: string): string {
  const created = answers.filter((a) => a.status === 202)
  t.equal(created.length, 1, `${what}: exactly one request created the job`)
  const id = String(created[0]?.body.id)
  for (const a of answers) {
    if (a.status === 202) continue
    if (a.status === 200) {
      t.equal(a.body.id, id, `${what}: a 200 carries the same job`)
      t.equal(a.headers.location, `/jobs/${id}`, `${what}: and its Location`)
    } else {
      t.equal(a.status, 409, `${what}: a loser that is not 200 is 409`)
      t.equal(a.body.code, 'IDEMPOTENCY_IN_PROGRESS')
      t.match(a.headers['retry-after'], /^\d+$/, `${what}: with Retry-After`)
    }
  }
  return id
}

const fromInject = (res: LightMyRequestResponse) => ({
  status: res.statusCode,
  headers: { location: res.headers.location as string | undefined, 'retry-after': res.headers['retry-after'] as string | undefined },
  body: res.json<Record<string, unknown>>()
})

t.test('the same key and body: 200 with the same job and Location, enqueued once', async (t) => {
  const { api, prefix } = await startTrawl(t, { worker: false, env: { API_KEYS } })
  const redis = connect(t)
  const first = await api.app.inject(submit(AS_A, 'order-42'))
  t.equal(first.statusCode, 202)
  const job = first.json<{ id: string }>()
  t.equal(first.headers.location, `/jobs/${job.id}`)
  const counted = await census(redis, prefix)
  t.same(counted, { jobs: 1, lanes: LANES, pending: 3 })

  const again = await api.app.inject(submit(AS_A, 'order-42'))
  t.equal(again.statusCode, 200, 'a retry answers 200')
  t.equal(again.headers.location, `/jobs/${job.id}`, 'with the same Location')
  t.same(again.json(), first.json(), 'and the same job document')

  // The same request written differently: members in another order, a header name in capitals.
  const reordered = { options: { headers: { 'x-trace': 'abc' }, retries: 1, concurrency: 2 }, urls: BODY.urls }
  const third = await api.app.inject(submit(AS_A, 'order-42', reordered))
  t.equal(third.statusCode, 200, 'the same body with its members reordered is the same request')
  t.equal(third.json().id, job.id)

  t.same(await census(redis, prefix), counted, 'no second job, lane or pending URL')
  const queue = new Queue('fetch', { connection: redis, prefix })
  t.teardown(() => queue.close())
  t.match(await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized'), { wait: LANES, active: 0, delayed: 0 }, 'BullMQ holds one set of lanes')

  // Still the same job once it has changed: cancelled, it is returned as it is now.
  t.equal((await api.app.inject({ method: 'DELETE', url: `/jobs/${job.id}`, headers: AS_A })).statusCode, 200)
  const later = await api.app.inject(submit(AS_A, 'order-42'))
  t.equal(later.statusCode, 200)
  t.equal(later.json().id, job.id)
  t.equal(later.json().state, 'cancelled', 'a retry after a cancel gets the cancelled job, not a new one')
  t.equal((await census(redis, prefix)).jobs, 1)
})

t.test('the same key with a different body: 422 IDEMPOTENCY_KEY_REUSED, nothing enqueued', async (t) => {
  const { api, prefix } = await startTrawl(t, { worker: false, env: { API_KEYS } })
  const redis = connect(t)
  t.equal((await api.app.inject(submit(AS_A, 'order-7'))).statusCode, 202)
  const counted = await census(redis, prefix)
  const variants: Array<[string, unknown]> = [
    ['another URL', { ...BODY, urls: [...BODY.urls.slice(0, 2), 'http://127.0.0.1:9/d'] }],
    ['the URLs in another order', { ...BODY, urls: [...BODY.urls].reverse() }],
    ['one URL more', { ...BODY, urls: [...BODY.urls, 'http://127.0.0.1:9/a'] }],
    ['another option', { ...BODY, options: { ...BODY.options, retries: 2 } }],
    ['another header value', { ...BODY, options: { ...BODY.options, headers: { 'X-Trace': 'abd' } } }],
    ['no options', { urls: BODY.urls }]
  ]
  for (const [name, body] of variants) {
    injectedProblem(t, await api.app.inject(submit(AS_A, 'order-7', body)), { status: 422, code: 'IDEMPOTENCY_KEY_REUSED' }, name)
  }
  t.same(await census(redis, prefix), counted, 'no job, lane or pending URL was added')
  t.equal((await api.app.inject(submit(AS_A, 'order-7'))).statusCode, 200, 'the original body still gets its job')
})

t.test('ten identical requests racing through one API make one job', async (t) => {
  const { api, prefix } = await startTrawl(t, { worker: false, env: { API_KEYS } })
  const redis = connect(t)
  for (let round = 0; round < 5; round++) {
    const key = `race-inject-${round}`
    const answers = (await Promise.all(Array.from({ length: 10 }, () => api.app.inject(submit(AS_A, key))))).map(fromInject)
    const id = checkRace(t, answers, `round ${round}`)
    // A loser that got 409 retries and gets the job.
    const retry = await api.app.inject(submit(AS_A, key))
    t.equal(retry.statusCode, 200)
    t.equal(retry.json().id, id)
    t.equal((await keysUnder(redis, `${prefix}:fetch:${id}-*`)).length, LANES, `round ${round}: one set of lanes`)
  }
  t.same(await census(redis, prefix), { jobs: 5, lanes: 5 * LANES, pending: 5 * 3 }, 'five rounds, five jobs')
})

t.test('ten identical requests racing over HTTP through two API processes make one job', async (t) => {
  const prefix = testPrefix(t, 'idem2')
  const one = await startTrawl(t, { worker: false, prefix, env: { API_KEYS } })
  const two = await startTrawl(t, { worker: false, prefix, env: { API_KEYS } })
  const bases = await Promise.all([one, two].map(async ({ api }) => {
    await api.app.listen({ port: 0, host: '127.0.0.1' })
    return `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`
  }))
  const redis = connect(t)
  for (let round = 0; round < 5; round++) {
    const key = `race-http-${round}`
    const answers = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
      const res = await fetch(`${bases[i % 2]}/jobs`, { method: 'POST', headers: { ...AS_A, 'idempotency-key': key, 'content-type': 'application/json' }, body: JSON.stringify(BODY) })
      return { status: res.status, headers: { location: res.headers.get('location') ?? undefined, 'retry-after': res.headers.get('retry-after') ?? undefined }, body: await res.json() as Record<string, unknown> }
    }))
    const id = checkRace(t, answers, `round ${round}`)
    t.equal((await keysUnder(redis, `${prefix}:fetch:${id}-*`)).length, LANES, `round ${round}: one set of lanes`)
  }
  t.same(await census(redis, prefix), { jobs: 5, lanes: 5 * LANES, pending: 5 * 3 }, 'five rounds, five jobs')
})

t.test('a key belongs to its tenant: the same key from another tenant makes its own job', async (t) => {
  const { api, prefix } = await startTrawl(t, { worker: false, env: { API_KEYS } })
  const redis = connect(t)
  const a = await api.app.inject(submit(AS_A, 'shared-key'))
  const b = await api.app.inject(submit(AS_B, 'shared-key'))
  t.equal(a.statusCode, 202)
  t.equal(b.statusCode, 202, 'B\'s first use of the key creates a job')
  t.not(b.json().id, a.json().id, 'a job of its own')
  t.equal((await api.app.inject(submit(AS_B, 'shared-key', { urls: ['http://127.0.0.1:9/other'] }))).statusCode, 422, 'B\'s key is bound to B\'s body')
  t.equal((await api.app.inject(submit(AS_A, 'shared-key'))).json().id, a.json().id, 'A\'s retry still gets A\'s job')
  t.equal((await api.app.inject(submit(AS_B, 'shared-key'))).json().id, b.json().id, 'B\'s retry gets B\'s job')
  t.equal((await census(redis, prefix, 'team-b')).pending, 3)
})

t.test('an invalid Idempotency-Key is refused with 400 and creates nothing', async (t) => {
  const { api, prefix } = await startTrawl(t, { worker: false, env: { API_KEYS } })
  const redis = connect(t)
  for (const [name, key] of [['300 characters', 'k'.repeat(300)], ['256 characters', 'k'.repeat(256)], ['empty', ''], ['a space', 'order 42'], ['a tab', 'order\t42']]) {
    const res = await api.app.inject(submit(AS_A, key as string))
    const body = injectedProblem(t, res, { status: 400, code: 'VALIDATION_FAILED' }, `a key with ${name}`)
    t.same((body.errors as Array<{ path: string }>).map((e) => e.path), ['/headers/idempotency-key'], `${name}: the error points at the header`)
  }
  t.same(await census(redis, prefix), { jobs: 0, lanes: 0, pending: 0 })
  t.equal((await api.app.inject(submit(AS_A, 'k'.repeat(255)))).statusCode, 202, '255 visible characters are fine')
})

t.test('a submission refused by the pending cap does not use up its key', async (t) => {
  const { api } = await startTrawl(t, { worker: false, env: { API_KEYS, MAX_PENDING_URLS_PER_TENANT: '3' } })
  const filler = await api.app.inject(submit(AS_A, null))
  t.equal(filler.statusCode, 202)
  injectedProblem(t, await api.app.inject(submit(AS_A, 'after-cap', { urls: ['http://127.0.0.1:9/x'] })), { status: 429, code: 'TOO_MANY_PENDING_URLS' }, 'over the cap')
  t.equal((await api.app.inject({ method: 'DELETE', url: `/jobs/${filler.json().id}`, headers: AS_A })).statusCode, 200)
  const retry = await api.app.inject(submit(AS_A, 'after-cap', { urls: ['http://127.0.0.1:9/x'] }))
  t.equal(retry.statusCode, 202, 'the retry with the same key is a new submission, not a 409 or 422')
})

t.test('a key claimed by a request that died before creating its job is not blocked for days', async (t) => {
  const { api, prefix, config } = await startTrawl(t, { worker: false, env: { API_KEYS } })
  const redis = connect(t)
  // Learn the request hash the API stores for BODY, from a normal submission.
  t.equal((await api.app.inject(submit(AS_A, 'learn-hash'))).statusCode, 202)
  const digest = (key: string) => createHash('sha256').update(key).digest('base64url')
  const stored = await redis.get(`${prefix}:tenant:team-a:idem:${digest('learn-hash')}`)
  t.match(stored, /^bound j_\S+ \S+$/, 'a key whose job exists is stored as `bound <jobId> <hash>`')
  const hash = stored?.split(' ')[2] ?? ''
  // What an API process leaves behind when it dies right after claiming the key.
  const keys = createIdempotencyKeys(redis, { prefix, ttlSeconds: config.JOB_TTL_SECONDS })
  t.equal(await keys.claim('team-a', digest('orphaned'), 'j_01JBBBBBBBBBBBBBBBBBBBBBBB', hash), null)
  const retry = await api.app.inject(submit(AS_A, 'orphaned'))
  t.equal(retry.statusCode, 409, 'while the claim is fresh, a retry is told to wait')
  const pttl = await redis.pttl(`${prefix}:tenant:team-a:idem:${digest('orphaned')}`)
  t.ok(pttl > 0 && pttl <= 60_000, `a claim with no job yet lapses within a minute (it lasts ${Math.round(pttl / 1000)} s)`)
  // Once it has lapsed, the retry is a new submission.
  await redis.del(`${prefix}:tenant:team-a:idem:${digest('orphaned')}`)
  const later = await api.app.inject(submit(AS_A, 'orphaned'))
  t.equal(later.statusCode, 202, 'after the lease, the retry creates the job')
  t.not(later.json().id, 'j_01JBBBBBBBBBBBBBBBBBBBBBBB')
})
