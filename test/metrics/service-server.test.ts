import Fastify from 'fastify'
import { serializerCompiler } from 'fastify-type-provider-zod'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { errorHandler } from '../../src/http/error-handler.js'
import { metricsRoute, startServiceServer } from '../../src/http/service-server.js'
import { validatorCompiler } from '../../src/http/validation.js'
import { createMetrics } from '../../src/metrics/metrics.js'
import { freePort } from '../../src/redis/free-port.js'
import { TEST_REDIS_URL } from '../helpers/redis.js'
import { promtoolCheck } from './tools.js'

const ADMIN_KEY = 'operator-key-0123456789abcdef'

function redisAt (t: Test, url: string) {
  // Fail fast, as the producer connection does: a ping to a Redis that is away rejects at once.
  const redis = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {}) // the failed ping is the answer; the event is noise
  t.teardown(() => redis.disconnect())
  return redis
}

t.test('a worker\'s service server answers healthz, readyz and metrics, and closes twice', async (t) => {
  const redis = redisAt(t, TEST_REDIS_URL)
  await redis.connect()
  const metrics = createMetrics({ role: 'worker' })
  metrics.urlFinished('failed', 'HTTP_STATUS')
  const server = await startServiceServer({ port: 0, registry: metrics.registry, ready: async () => (await redis.ping()) === 'PONG' })
  t.teardown(() => server.close())

  const health = await fetch(`${server.url}/healthz`)
  t.equal(health.status, 200)
  t.same(await health.json(), { status: 'ok' })
  const ready = await fetch(`${server.url}/readyz`)
  t.equal(ready.status, 200)
  t.same(await ready.json(), { status: 'ok' })

  const res = await fetch(`${server.url}/metrics`)
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), metrics.registry.contentType)
  const text = await res.text()
  t.match(text, /^trawl_urls_finished_total\{state="failed",code="HTTP_STATUS",role="worker"\} 1$/m, 'plain text, not a JSON string')
  const check = await promtoolCheck(text)
  t.equal(check.code, 0, `promtool: ${check.output}`)

  await server.close()
  await server.close()
  await t.rejects(fetch(`${server.url}/healthz`), 'nothing listens once closed')
})

t.test('readyz answers 503 UNAVAILABLE when Redis does not answer, or the check hangs', async (t) => {
  const away = redisAt(t, `redis://127.0.0.1:${await freePort()}`)
  const metrics = createMetrics({ role: 'worker', processDefaults: false })
  const server = await startServiceServer({ port: 0, registry: metrics.registry, ready: async () => (await away.ping()) === 'PONG' })
  t.teardown(() => server.close())
  const res = await fetch(`${server.url}/readyz`)
  t.equal(res.status, 503)
  t.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8')
  t.ok(res.headers.get('retry-after'), 'says when to try again')
  t.match(await res.json(), { status: 503, code: 'UNAVAILABLE', type: 'urn:trawl:problem:unavailable', instance: '/readyz' })
  t.equal((await fetch(`${server.url}/healthz`)).status, 200, 'still alive')

  const stuck = await startServiceServer({ port: 0, registry: metrics.registry, readyTimeoutMs: 50, ready: () => new Promise(() => {}) })
  t.teardown(() => stuck.close())
  t.equal((await fetch(`${stuck.url}/readyz`)).status, 503, 'a check that hangs is not ready')
})

async function apiStandIn (t: Test, adminKeys: string[]) {
  const app = Fastify()
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  await app.register(errorHandler)
  const metrics = createMetrics({ role: 'api', processDefaults: false })
  metrics.subscriberOpened()
  await app.register(metricsRoute, { registry: metrics.registry, adminKeys })
  t.teardown(() => app.close())
  return app
}

t.test('the API\'s /metrics plugin refuses without an operator key when keys are set', async (t) => {
  const app = await apiStandIn(t, ['another-operator-key-0123456789', ADMIN_KEY])
  const none = await app.inject('/metrics')
  t.equal(none.statusCode, 401)
  t.match(none.json(), { code: 'UNAUTHORIZED', status: 401 })
  t.equal(none.headers['www-authenticate'], 'Bearer realm="trawl"')
  const wrong = await app.inject({ url: '/metrics', headers: { authorization: 'Bearer not-an-operator-key-01234' } })
  t.equal(wrong.statusCode, 401)
  const basic = await app.inject({ url: '/metrics', headers: { authorization: `Basic ${ADMIN_KEY}` } })
  t.equal(basic.statusCode, 401, 'only a bearer key')
  const right = await app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  t.equal(right.statusCode, 200)
  t.match(right.body, /^trawl_event_subscribers\{role="api"\} 1$/m)
})

t.test('without operator keys the API\'s /metrics is open', async (t) => {
  const app = await apiStandIn(t, [])
  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
})
