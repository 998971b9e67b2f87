import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { jobKeys, tenantJobsKey } from '../../src/jobs/keys.js'
import { encodeCursor } from '../../src/jobs/listing.js'
import { createJobStore } from '../../src/jobs/redis-store.js'
import { DEFAULT_OPTIONS } from '../../src/jobs/schemas.js'
import { eventually } from '../helpers/eventually.js'
import { TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { startTrawl } from '../helpers/trawl.js'

// GET /jobs: the tenant's own jobs from its index in Redis, newest first, filtered, paged.

const KEYS = { alpha: 'alpha-list-key-0123456789', beta: 'beta-list-key-0123456789' }
type Tenant = keyof typeof KEYS
type Listed = { jobs: Array<{ id: string, state: string }>, page: { next: string | null } }

function redisFor (t: Test): Redis {
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  return redis
}

async function service (t: Test, env: Record<string, string> = {}) {
  const trawl = await startTrawl(t, { worker: false, env: { API_KEYS: `alpha:${KEYS.alpha},beta:${KEYS.beta}`, ...env } })
  const as = (tenant: Tenant) => ({ authorization: `Bearer ${KEYS[tenant]}` })
  const submit = async (tenant: Tenant, n = 1): Promise<string[]> => {
    const ids: string[] = []
    for (let i = 0; i < n; i++) {
      const res = await trawl.api.app.inject({ method: 'POST', url: '/jobs', headers: as(tenant), payload: { urls: [`http://a.test/${i}`] } })
      t.equal(res.statusCode, 202)
      ids.push(res.json().id)
    }
    return ids
  }
  const list = async (tenant: Tenant, url = '/jobs'): Promise<Listed> => {
    const res = await trawl.api.app.inject({ method: 'GET', url, headers: as(tenant) })
    t.equal(res.statusCode, 200, `GET ${url}`)
    return res.json()
  }
  return { trawl, as, submit, list }
}

/** Every page from `url` on, following page.next. */
async function allPages (list: (url: string) => Promise<Listed>, url: string): Promise<{ ids: string[], pages: number }> {
  const ids: string[] = []
  let next: string | null = url
  let pages = 0
  while (next !== null) {
    const page: Listed = await list(next)
    ids.push(...page.jobs.map((j) => j.id))
    next = page.page.next
    pages++
  }
  return { ids, pages }
}

t.test('newest first, each tenant only its own, without results', async (t) => {
  const { submit, list } = await service(t)
  const alpha = await submit('alpha', 3)
  const beta = await submit('beta', 2)
  const more = await submit('alpha', 1)
  const mine = await list('alpha')
  t.same(mine.jobs.map((j) => j.id), [...more, ...alpha.reverse()], 'alpha: its four jobs, newest first')
  t.equal(mine.page.next, null, 'one page')
  t.notOk('results' in (mine.jobs[0] ?? {}), 'no results')
  t.notOk('page' in (mine.jobs[0] ?? {}), 'no results page')
  t.equal(mine.jobs[0]?.state, 'queued')
  t.same((await list('beta')).jobs.map((j) => j.id), beta.reverse(), "beta: its own two, never alpha's")
})

t.test('state filters, repeatable', async (t) => {
  const { trawl, as, submit, list } = await service(t)
  const [a, b, c] = await submit('alpha', 3)
  const del = await trawl.api.app.inject({ method: 'DELETE', url: `/jobs/${b}`, headers: as('alpha') })
  t.equal(del.statusCode, 200)
  t.same((await list('alpha', '/jobs?state=cancelled')).jobs.map((j) => j.id), [b])
  t.same((await list('alpha', '/jobs?state=queued')).jobs.map((j) => j.id), [c, a])
  t.same((await list('alpha', '/jobs?state=queued&state=cancelled')).jobs.map((j) => j.id), [c, b, a])
  t.same((await list('alpha', '/jobs?state=completed')).jobs, [])
  // A filter that keeps one job in three still fills its pages.
  const filtered = await allPages((url) => list('alpha', url), '/jobs?state=queued&limit=1')
  t.same(filtered.ids, [c, a])
  const page = await list('alpha', '/jobs?state=queued&limit=1')
  t.match(page.page.next, /^\/jobs\?cursor=[A-Za-z0-9_-]+&limit=1&state=queued$/, 'next keeps the filter and the limit')
})

t.test('paging: no duplicate and no gap while new jobs arrive', async (t) => {
  const { submit, list } = await service(t)
  const first = (await submit('alpha', 7)).reverse()
  const one = await list('alpha', '/jobs?limit=3')
  t.same(one.jobs.map((j) => j.id), first.slice(0, 3))
  t.match(one.page.next, /^\/jobs\?cursor=[A-Za-z0-9_-]+&limit=3$/)
  const arrived = await submit('alpha', 2)
  const two = await list('alpha', one.page.next ?? '')
  t.same(two.jobs.map((j) => j.id), first.slice(3, 6), 'the second page goes on where the first ended')
  await submit('alpha', 1)
  const three = await list('alpha', two.page.next ?? '')
  t.same(three.jobs.map((j) => j.id), first.slice(6))
  t.equal(three.page.next, null, 'the last page says so')
  const fresh = await list('alpha', '/jobs?limit=3')
  t.same(fresh.jobs.slice(1).map((j) => j.id), arrived.reverse(), 'new jobs are at the top of a fresh first page')
  const whole = await allPages((url) => list('alpha', url), '/jobs?limit=2')
  t.equal(whole.ids.length, 10)
  t.equal(new Set(whole.ids).size, 10, 'every job once')
  t.equal(whole.pages, 5, 'ten jobs in pages of two: five pages, the last one ends the list')
  t.same((await list('alpha')).jobs.map((j) => j.id), whole.ids, 'the pages together are the whole list, in order')
})

t.test('jobs created in the same millisecond are paged by id', async (t) => {
  const prefix = testPrefix(t)
  const redis = redisFor(t)
  const store = createJobStore(redis, { prefix, ttlSeconds: 60 })
  const now = Date.now()
  const ids = ['j_01JD0000000000000000000001', 'j_01JD0000000000000000000002', 'j_01JD0000000000000000000003', 'j_01JD0000000000000000000004']
  for (const id of ids) await store.create({ id, tenant: 'alpha', urls: ['http://a.test/'], options: DEFAULT_OPTIONS, now })
  await store.create({ id: 'j_01JD0000000000000000000000', tenant: 'alpha', urls: ['http://a.test/'], options: DEFAULT_OPTIONS, now: now - 5 })
  const seen: string[] = []
  let after = null
  do {
    const page = await store.list('alpha', { states: null, limit: 3, after })
    seen.push(...page.jobs.map((m) => m.id))
    after = page.next
  } while (after !== null)
  t.same(seen, [...ids].reverse().concat('j_01JD0000000000000000000000'))
})

t.test('expired jobs drop out of the list, and out of the index', async (t) => {
  const { trawl, submit, list } = await service(t, { JOB_TTL_SECONDS: '1' })
  const redis = redisFor(t)
  const index = tenantJobsKey(trawl.prefix, 'alpha')
  const ids = await submit('alpha', 2)
  const pttl = await redis.pttl(index)
  t.ok(pttl > 1000 && pttl <= 2000, `the index expires too, twice the job TTL from the last job (${pttl} ms)`)
  t.equal((await list('alpha')).jobs.length, 2)
  await eventually(async () => (await redis.exists(...ids.map((id) => jobKeys(trawl.prefix, id).meta))) === 0, { what: 'the job records expire', timeoutMs: 5000, intervalMs: 100 })
  if (await redis.exists(index) === 1) {
    t.same((await list('alpha')).jobs, [], 'expired jobs are not listed')
    t.equal(await redis.zcard(index), 0, 'and their entries were removed as the list was read')
  } else {
    t.same((await list('alpha')).jobs, [], 'the index expired with them')
  }
})

t.test('a job whose index entry cannot be written is not created', async (t) => {
  const prefix = testPrefix(t)
  const redis = redisFor(t)
  const store = createJobStore(redis, { prefix, ttlSeconds: 60 })
  // Not a sorted set: ZADD fails with WRONGTYPE.
  await redis.set(tenantJobsKey(prefix, 'alpha'), 'x')
  const id = 'j_01JD0000000000000000000009'
  await t.rejects(store.create({ id, tenant: 'alpha', urls: ['http://a.test/'], options: DEFAULT_OPTIONS, now: Date.now() }), /WRONGTYPE/)
  t.equal(await redis.exists(store.keysOf(id).meta, store.keysOf(id).urls, store.keysOf(id).events), 0, 'the record was deleted again')
})

t.test('a job whose own writes fail is not created, nor left in the index', async (t) => {
  const prefix = testPrefix(t)
  const redis = redisFor(t)
  const store = createJobStore(redis, { prefix, ttlSeconds: 60 })
  const id = 'j_01JD0000000000000000000010'
  // Not a list: RPUSH fails with WRONGTYPE inside the job's MULTI, which the index's goes out with.
  await redis.set(store.keysOf(id).urls, 'x')
  await t.rejects(store.create({ id, tenant: 'alpha', urls: ['http://a.test/'], options: DEFAULT_OPTIONS, now: Date.now() }), /WRONGTYPE/)
  t.equal(await redis.exists(store.keysOf(id).meta, store.keysOf(id).events), 0, 'the record was deleted again')
  t.equal(await redis.zscore(tenantJobsKey(prefix, 'alpha'), id), null, 'and its index entry')
})

t.test('bad queries are 400 problems naming the parameter', async (t) => {
  const { trawl, as } = await service(t)
  const forged = encodeCursor({ createdAt: 1, id: 'j_01JD0000000000000000000000' }).slice(0, -2)
  for (const [url, path] of [
    ['/jobs?cursor=nonsense', '/querystring/cursor'],
    [`/jobs?cursor=${forged}`, '/querystring/cursor'],
    [`/jobs?cursor=${Buffer.from('12.j_nope').toString('base64url')}`, '/querystring/cursor'],
    ['/jobs?cursor=', '/querystring/cursor'],
    ['/jobs?limit=0', '/querystring/limit'],
    ['/jobs?limit=201', '/querystring/limit'],
    ['/jobs?state=done', '/querystring/state/0']
  ] as const) {
    const res = await trawl.api.app.inject({ method: 'GET', url, headers: as('alpha') })
    t.equal(res.statusCode, 400, url)
    t.equal(res.json().code, 'VALIDATION_FAILED')
    t.same(res.json().errors?.map((e: { path: string }) => e.path), [path], url)
  }
  const ok = await trawl.api.app.inject({ method: 'GET', url: '/jobs?limit=200', headers: as('alpha') })
  t.equal(ok.statusCode, 200, 'limit 200 is allowed')
  const unauthorized = await trawl.api.app.inject({ method: 'GET', url: '/jobs' })
  t.equal(unauthorized.statusCode, 401)
})
