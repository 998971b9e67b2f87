import t from 'tap'
import { Redis } from 'ioredis'
import { startTrawl } from '../helpers/trawl.js'
import { TEST_REDIS_URL } from '../helpers/redis.js'

// Bad requests: each gets an RFC 9457 problem with a stable code, and nothing reaches Redis.

t.test('bad submissions are refused with problems and enqueue nothing', async (t) => {
  const { api, prefix } = await startTrawl(t, { worker: false, env: { MAX_URLS_PER_JOB: '20' } })
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  const cases: Array<{ name: string, payload: unknown, raw?: string, type?: string, status: number, code: string, paths?: string[] }> = [
    { name: 'no urls', payload: { urls: [] }, status: 400, code: 'VALIDATION_FAILED', paths: ['/urls'] },
    { name: 'urls missing', payload: {}, status: 400, code: 'VALIDATION_FAILED', paths: ['/urls'] },
    { name: 'one bad url among good ones', payload: { urls: ['http://a.test/', 'not a url', 'ftp://x.test/f', 'http://b.test/'] }, status: 400, code: 'VALIDATION_FAILED', paths: ['/urls/1', '/urls/2'] },
    { name: 'too long url', payload: { urls: [`http://a.test/${'x'.repeat(2100)}`] }, status: 400, code: 'VALIDATION_FAILED', paths: ['/urls/0'] },
    { name: 'too many urls', payload: { urls: Array.from({ length: 21 }, (_, i) => `http://a.test/${i}`) }, status: 400, code: 'VALIDATION_FAILED', paths: ['/urls'] },
    { name: 'concurrency out of range', payload: { urls: ['http://a.test/'], options: { concurrency: 0 } }, status: 400, code: 'VALIDATION_FAILED', paths: ['/options/concurrency'] },
    { name: 'timeout too small', payload: { urls: ['http://a.test/'], options: { timeoutMs: 5 } }, status: 400, code: 'VALIDATION_FAILED', paths: ['/options/timeoutMs'] },
    { name: 'unknown option', payload: { urls: ['http://a.test/'], options: { speed: 'max' } }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'hop-by-hop header', payload: { urls: ['http://a.test/'], options: { headers: { Connection: 'close' } } }, status: 400, code: 'VALIDATION_FAILED', paths: ['/options/headers/Connection'] },
    { name: 'host header', payload: { urls: ['http://a.test/'], options: { headers: { host: 'evil.test' } } }, status: 400, code: 'VALIDATION_FAILED', paths: ['/options/headers/host'] },
    { name: 'header injection', payload: { urls: ['http://a.test/'], options: { headers: { 'x-a': 'b\r\nx-c: d' } } }, status: 400, code: 'VALIDATION_FAILED', paths: ['/options/headers/x-a'] },
    { name: 'callback without secret', payload: { urls: ['http://a.test/'], callbackUrl: 'http://cb.test/' }, status: 400, code: 'VALIDATION_FAILED', paths: ['/callbackUrl'] },
    { name: 'malformed JSON', payload: undefined, raw: '{"urls": [', status: 400, code: 'VALIDATION_FAILED' },
    { name: 'not JSON', payload: undefined, raw: 'urls=http://a.test/', type: 'application/x-www-form-urlencoded', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    { name: 'array body', payload: ['http://a.test/'], status: 400, code: 'VALIDATION_FAILED' }
  ]
  for (const c of cases) {
    const res = await api.app.inject({
      method: 'POST',
      url: '/jobs',
      headers: { 'content-type': c.type ?? 'application/json' },
      payload: c.raw ?? JSON.stringify(c.payload)
    })
    t.equal(res.statusCode, c.status, `${c.name}: status`)
    t.match(res.headers['content-type'], /^application\/problem\+json/, `${c.name}: problem media type`)
    const body = res.json()
    t.equal(body.code, c.code, `${c.name}: code`)
    t.equal(body.status, c.status, `${c.name}: status in body`)
    t.type(body.title, 'string')
    t.type(body.detail, 'string')
    t.match(body.type, /^urn:trawl:problem:/)
    if (c.paths) t.same(body.errors.map((e: { path: string }) => e.path).sort(), c.paths.sort(), `${c.name}: error paths`)
  }
  t.same(await redis.keys(`${prefix}:job:*`), [], 'no job record was written')
  t.same(await redis.keys(`${prefix}:fetch:[0-9a-z]*-*`), [], 'no lane was queued')
  t.equal(await redis.llen(`${prefix}:fetch:wait`), 0, 'the queue is empty')
})

t.test('unknown jobs, content and routes answer 404 problems', async (t) => {
  const { api } = await startTrawl(t, { worker: false })
  const missing = 'j_01JAAAAAAAAAAAAAAAAAAAAAAA'
  for (const [method, url, code] of [
    ['GET', `/jobs/${missing}`, 'JOB_NOT_FOUND'],
    ['GET', '/jobs/not-an-id', 'JOB_NOT_FOUND'],
    ['DELETE', `/jobs/${missing}`, 'JOB_NOT_FOUND'],
    ['GET', `/jobs/${missing}/results/0/content`, 'JOB_NOT_FOUND'],
    ['GET', '/nope', 'NOT_FOUND']
  ] as const) {
    const res = await api.app.inject({ method, url })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.equal(res.json().code, code, `${method} ${url}: code`)
  }
  const bad = await api.app.inject({ method: 'GET', url: `/jobs/${missing}?limit=5000` })
  t.equal(bad.statusCode, 400)
  t.same(bad.json().errors.map((e: { path: string }) => e.path), ['/querystring/limit'])
})

t.test('health and readiness', async (t) => {
  const { api } = await startTrawl(t, { worker: false })
  t.same((await api.app.inject('/healthz')).json(), { status: 'ok' })
  t.same((await api.app.inject('/readyz')).json(), { status: 'ok' })
})
