import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { finishedChannel } from '../../src/jobs/keys.js'
import { check, checkResponse, contractTest, type Answer } from '../helpers/contract/check.js'
import { injector, json, LONG_ID, MISSING_ID, OPERATOR_ROUTES, PROBES, startRedisProxy } from '../helpers/contract/service.js'
import { operationsOf, spec } from '../helpers/contract/spec.js'
import { eventually } from '../helpers/eventually.js'
import { TEST_REDIS_URL } from '../helpers/redis.js'
import { startTrawl } from '../helpers/trawl.js'

// The problems every route shares, against openapi.yaml: 404, 401 with API keys, 503 when the
// process is overloaded and when Redis does not answer. Each test runs its own service.

contractTest('problems: 404 for unknown jobs (any id that is not a job) and for paths no route serves', async (t) => {
  const { api } = await startTrawl(t, { worker: false })
  const inject = injector(api.app)
  for (const [method, url, path, code] of [
    ['get', `/jobs/${MISSING_ID}`, '/jobs/{id}', 'JOB_NOT_FOUND'],
    ['get', '/jobs/not-an-id', '/jobs/{id}', 'JOB_NOT_FOUND'],
    ['get', `/jobs/${LONG_ID}`, '/jobs/{id}', 'JOB_NOT_FOUND'],
    ['delete', `/jobs/${MISSING_ID}`, '/jobs/{id}', 'JOB_NOT_FOUND'],
    ['delete', `/jobs/${LONG_ID}`, '/jobs/{id}', 'JOB_NOT_FOUND'],
    ['get', `/jobs/${MISSING_ID}/results/0/content`, '/jobs/{id}/results/{index}/content', 'JOB_NOT_FOUND'],
    ['get', `/jobs/${LONG_ID}/results/0/content`, '/jobs/{id}/results/{index}/content', 'JOB_NOT_FOUND']
  ] as const) {
    const res = await inject(method.toUpperCase(), url)
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.equal((check(t, res, method, path) as { code: string }).code, code)
  }
  check(t, await inject('HEAD', `/jobs/${MISSING_ID}`), 'head', '/jobs/{id}')
  check(t, await inject('HEAD', `/jobs/${MISSING_ID}/results/0/content`), 'head', '/jobs/{id}/results/{index}/content')
  for (const [method, url] of [['GET', '/nope'], ['PUT', '/jobs'], ['DELETE', '/jobs'], ['POST', `/jobs/${MISSING_ID}`], ['PATCH', '/healthz'], ['POST', `/jobs/${MISSING_ID}/events`]] as const) {
    const res = await inject(method, url)
    t.equal(res.statusCode, 404, `${method} ${url}`)
    checkResponse(t, res, '#/components/responses/RouteNotFound', `${method} ${url}`)
  }
})

contractTest('problems: with API keys, 401 without a valid key on every route but the probes; another tenant\'s job is 404', async (t) => {
  const keys = { alpha: 'alpha-key-0123456789abcdef', beta: 'beta-key-0123456789abcdef' }
  const { api } = await startTrawl(t, { worker: false, env: { API_KEYS: `alpha:${keys.alpha},beta:${keys.beta}` } })
  const as = (tenant: keyof typeof keys) => ({ authorization: `Bearer ${keys[tenant]}` })
  const inject = (method: string, url: string, extra: { payload?: object, headers?: Record<string, string> } = {}) =>
    api.app.inject({ method: method as 'GET', url, ...extra }) as Promise<Answer>
  const payload = { urls: ['http://a.test/'] }
  const job = json(check(t, await inject('POST', '/jobs', { payload, headers: as('alpha') }), 'post', '/jobs'))

  for (const [path, method, op] of operationsOf(spec.paths)) {
    if (!op.security?.some((s) => 'apiKey' in s)) continue
    const url = path.replace('{id}', job.id).replace('{index}', '0')
    const wrong: Array<Record<string, string>> = [{}, { authorization: 'Bearer not-a-key-0123456789' }, { authorization: `Basic ${keys.alpha}` }, { authorization: 'Bearer' }]
    for (const headers of wrong) {
      const res = await inject(method.toUpperCase(), url, { headers, payload: method === 'post' ? payload : undefined })
      t.equal(res.statusCode, 401, `${method.toUpperCase()} ${url} ${JSON.stringify(headers)}`)
      const problem = check(t, res, method, path) as { code: string } | undefined
      if (method !== 'head') t.equal(problem?.code, 'UNAUTHORIZED')
    }
  }
  // The probes need no key; /metrics needs none of a tenant's (it is open without ADMIN_API_KEYS).
  for (const path of [...PROBES, ...OPERATOR_ROUTES]) {
    const get = await inject('GET', path)
    t.equal(get.statusCode, 200, `GET ${path} without a key`)
    check(t, get, 'get', path)
    const head = await inject('HEAD', path)
    t.equal(head.statusCode, 200, `HEAD ${path} without a key`)
    check(t, head, 'head', path)
  }
  const unknown = await inject('GET', '/nope')
  t.equal(unknown.statusCode, 401, 'an unknown path without a key is 401 too')

  const mine = json(check(t, await inject('GET', `/jobs/${job.id}`, { headers: as('alpha') }), 'get', '/jobs/{id}'))
  t.equal(mine.id, job.id, 'the owner reads its job')
  for (const [method, url, path] of [
    ['get', `/jobs/${job.id}`, '/jobs/{id}'],
    ['head', `/jobs/${job.id}`, '/jobs/{id}'],
    ['delete', `/jobs/${job.id}`, '/jobs/{id}'],
    ['get', `/jobs/${job.id}/results/0/content`, '/jobs/{id}/results/{index}/content'],
    ['head', `/jobs/${job.id}/results/0/content`, '/jobs/{id}/results/{index}/content'],
    ['get', `/jobs/${job.id}/events`, '/jobs/{id}/events'],
    ['get', `/jobs/${job.id}/results`, '/jobs/{id}/results'],
    ['get', `/jobs/${job.id}/archive`, '/jobs/{id}/archive']
  ] as const) {
    const res = await inject(method.toUpperCase(), url, { headers: as('beta') })
    t.equal(res.statusCode, 404, `beta: ${method.toUpperCase()} ${url}`)
    const problem = check(t, res, method, path) as { code: string } | undefined
    if (method !== 'head') t.equal(problem?.code, 'JOB_NOT_FOUND', 'exactly as a job that does not exist')
  }
  const still = json(check(t, await inject('GET', `/jobs/${job.id}?results=none`, { headers: as('alpha') }), 'get', '/jobs/{id}'))
  t.equal(still.state, 'queued', 'another tenant\'s DELETE did nothing')

  // Idempotency-Keys are per tenant: the same key names different jobs for alpha and beta.
  const key = `contract-${randomUUID()}`
  const a = json(check(t, await inject('POST', '/jobs', { payload, headers: { ...as('alpha'), 'idempotency-key': key } }), 'post', '/jobs'))
  const b = await inject('POST', '/jobs', { payload, headers: { ...as('beta'), 'idempotency-key': key } })
  t.equal(b.statusCode, 202, 'another tenant\'s key is separate')
  t.not(json(check(t, b, 'post', '/jobs')).id, a.id)
})

contractTest('problems: 503 with Retry-After while the process is overloaded, on every route but /healthz', async (t) => {
  // Any resident memory is past 1 MB: once under-pressure has sampled it, every request is shed.
  const { api } = await startTrawl(t, { worker: false, env: { OVERLOAD_MAX_RSS_MB: '1' } })
  const inject = (method: string, url: string) => api.app.inject({ method: method as 'GET', url, payload: method === 'POST' ? { urls: ['http://a.test/'] } : undefined }) as Promise<Answer>
  // Memory is sampled once a second, with nothing to announce it.
  await eventually(async () => (await inject('GET', '/readyz')).statusCode === 503, { what: 'readyz sheds once the process is over its limit', intervalMs: 50 })
  for (const [path, method, op] of operationsOf(spec.paths)) {
    const url = path.replace('{id}', MISSING_ID).replace('{index}', '0')
    const res = await inject(method.toUpperCase(), url)
    if (path === '/healthz') {
      t.equal(res.statusCode, 200, `${method.toUpperCase()} ${path} is exempt`)
    } else {
      t.ok('503' in op.responses, `${method.toUpperCase()} ${path} documents 503`)
      t.equal(res.statusCode, 503, `${method.toUpperCase()} ${url}`)
      t.equal(res.headers['retry-after'], '5')
    }
    check(t, res, method, path)
  }
})

contractTest('problems: 503 with Retry-After while Redis does not answer', async (t) => {
  const proxy = await startRedisProxy()
  t.teardown(proxy.close)
  const { api, prefix } = await startTrawl(t, { worker: false, env: { REDIS_URL: proxy.url } })
  const inject = (method: string, url: string, payload?: object) => api.app.inject({ method: method as 'GET', url, payload }) as Promise<Answer>
  const job = json(check(t, await inject('POST', '/jobs', { urls: ['http://a.test/'] }), 'post', '/jobs'))

  await proxy.cut()
  const ready = await eventually(async () => {
    const res = await inject('GET', '/readyz')
    return res.statusCode === 503 && res
  }, { what: 'readyz answers 503 once Redis is cut', intervalMs: 5 })
  t.equal(ready.statusCode, 503, 'readyz')
  check(t, ready, 'get', '/readyz')
  const health = await inject('GET', '/healthz')
  t.equal(health.statusCode, 200, 'healthz stays 200 while the process runs')
  check(t, health, 'get', '/healthz')

  for (const [method, url, path, payload] of [
    ['post', '/jobs', '/jobs', { urls: ['http://a.test/'] }],
    ['get', '/jobs', '/jobs', undefined],
    ['head', '/jobs', '/jobs', undefined],
    ['get', `/jobs/${job.id}`, '/jobs/{id}', undefined],
    ['delete', `/jobs/${job.id}`, '/jobs/{id}', undefined],
    ['get', `/jobs/${job.id}/results/0/content`, '/jobs/{id}/results/{index}/content', undefined],
    ['get', `/jobs/${job.id}/events`, '/jobs/{id}/events', undefined],
    ['head', `/jobs/${job.id}`, '/jobs/{id}', undefined],
    ['head', `/jobs/${job.id}/results/0/content`, '/jobs/{id}/results/{index}/content', undefined],
    ['head', '/readyz', '/readyz', undefined]
  ] as const) {
    const started = Date.now()
    const res = await inject(method.toUpperCase(), url, payload)
    t.equal(res.statusCode, 503, `${method} ${url}`)
    t.ok(Date.now() - started < 2500, `answered within about 2 s (${Date.now() - started} ms)`)
    t.equal(res.headers['retry-after'], '2')
    check(t, res, method, path)
  }

  await proxy.restore()
  await eventually(async () => (await inject('GET', '/readyz')).statusCode === 200, { what: 'ready again once Redis answers', timeoutMs: 10_000, intervalMs: 100 })
  // The finish watcher's connection resubscribes by itself (ioredis autoResubscribe), unguarded:
  // closing it while that SUBSCRIBE is in flight is an unhandled rejection. Let it finish first.
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  await eventually(async () => {
    const [, count] = await redis.pubsub('NUMSUB', finishedChannel(prefix)) as [string, number]
    return count > 0
  }, { what: 'the finish watcher is subscribed again', timeoutMs: 10_000, intervalMs: 50 })
})
