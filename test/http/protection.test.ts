import { Redis } from 'ioredis'
import t from 'tap'
import { eventually } from '../helpers/eventually.js'
import { TEST_REDIS_URL } from '../helpers/redis.js'
import { injectedProblem, keysUnder } from '../helpers/security.js'
import { startTrawl } from '../helpers/trawl.js'

// Load shedding (src/http/protection.ts): a quick 503 when the process itself is overloaded.

t.test('an overloaded API answers 503 with Retry-After, and /healthz still answers', async (t) => {
  // 1 MB of resident memory: every process is past it, once the first sample is taken.
  const { api, prefix } = await startTrawl(t, { worker: false, env: { OVERLOAD_MAX_RSS_MB: '1' } })
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  const payload = { urls: ['http://127.0.0.1:9/a'] }
  // The memory is sampled once a second, with no event to wait for: poll, bounded.
  const res = await eventually(async () => {
    const r = await api.app.inject({ method: 'POST', url: '/jobs', payload })
    return r.statusCode === 503 && r
  }, { what: 'POST /jobs is shed with 503', intervalMs: 50 })
  const body = injectedProblem(t, res, { status: 503, code: 'UNAVAILABLE' }, 'POST /jobs when overloaded')
  t.match(res.headers['retry-after'], /^\d+$/, 'with a numeric Retry-After')
  t.notMatch(String(body.detail), /rss|heap|eventLoop|\d{4,}/i, 'the detail names no internal measure')
  t.equal(body.detail, 'The server is overloaded; try again shortly.')
  const created = (await keysUnder(redis, `${prefix}:job:*:meta`)).length
  const shed = await api.app.inject({ method: 'POST', url: '/jobs', payload })
  injectedProblem(t, shed, { status: 503, code: 'UNAVAILABLE' }, 'the next submission too')
  t.equal((await keysUnder(redis, `${prefix}:job:*:meta`)).length, created, 'a shed request creates nothing')
  injectedProblem(t, await api.app.inject('/jobs/j_01JAAAAAAAAAAAAAAAAAAAAAAA'), { status: 503, code: 'UNAVAILABLE' }, 'GET /jobs/:id when overloaded')
  const health = await api.app.inject('/healthz')
  t.equal(health.statusCode, 200, '/healthz answers 200: the process is alive')
  t.same(health.json(), { status: 'ok' })
})
