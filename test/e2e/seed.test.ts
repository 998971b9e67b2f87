import { Redis } from 'ioredis'
import t from 'tap'
import { TEST_REDIS_URL } from '../helpers/redis.js'
import { startSeedSite } from '../helpers/seed.js'
import { startTrawl } from '../helpers/trawl.js'

// The seed's workload end to end: 15 pages through the real API and a real worker.

t.test('the seed workload: submit, poll, read every body back byte for byte', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const { api, prefix } = await startTrawl(t)

  const submit = await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: site.urls, options: { concurrency: 5 } } })
  t.equal(submit.statusCode, 202)
  const job = submit.json()
  t.equal(submit.headers.location, `/jobs/${job.id}`)
  t.equal(job.total, 15)
  t.match(job.id, /^j_[0-9A-Z]{26}$/)
  t.same(job.options, { concurrency: 5, timeoutMs: 30000, retries: 2, maxBytes: 10485760, maxRedirects: 5, headers: {}, keepContent: true, robots: 'ignore' })

  const done = (await api.app.inject(`/jobs/${job.id}?wait=30`)).json()
  t.equal(done.state, 'completed')
  t.same(done.counts, { pending: 0, running: 0, succeeded: 15, failed: 0, cancelled: 0 })
  t.equal(done.bytes, site.bodies.reduce((n, b) => n + b.length, 0), 'bytes counts decoded bytes')
  t.ok(done.startedAt && done.finishedAt, 'started and finished are set')
  t.equal(done.durationMs, Date.parse(done.finishedAt) - Date.parse(done.startedAt), 'durationMs is finishedAt - startedAt')
  t.equal(done.results.length, 15)
  for (const [i, r] of done.results.entries()) {
    t.equal(r.index, i, 'results in input order')
    t.equal(r.url, site.urls[i])
    t.equal(r.state, 'succeeded')
    t.equal(r.status, 200)
    t.equal(r.bytes, site.bodies[i]?.length)
    t.equal(r.contentType, 'text/html; charset=UTF-8')
    t.equal(r.attempts, 1)
    t.equal(r.error, null)
    const content = await api.app.inject(r.contentUrl)
    t.equal(content.statusCode, 200)
    t.equal(content.headers['content-type'], 'text/html; charset=UTF-8')
    t.ok(content.rawPayload.equals(site.bodies[i] as Buffer), `body ${i} byte for byte`)
  }

  const page = (await api.app.inject(`/jobs/${job.id}?offset=10&limit=3`)).json()
  t.same(page.results.map((r: { index: number }) => r.index), [10, 11, 12])
  t.same(page.page, { offset: 10, limit: 3, next: `/jobs/${job.id}?offset=13&limit=3` })
  const none = (await api.app.inject(`/jobs/${job.id}?results=none`)).json()
  t.equal(none.results, undefined)

  const again = await api.app.inject({ method: 'DELETE', url: `/jobs/${job.id}` })
  t.equal(again.statusCode, 409)
  t.equal(again.json().code, 'JOB_FINISHED')

  // Everything the job wrote expires JOB_TTL_SECONDS after it finished, as expiresAt says; its
  // bodies are in the content store, not in Redis.
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  const keys = await redis.keys(`${prefix}:job:{${job.id}}:*`)
  t.same(keys.map((k) => k.split(':').pop()).sort(), ['events', 'meta', 'results', 'urls'])
  const expiresAt = Date.parse(done.expiresAt)
  t.equal(expiresAt, Date.parse(done.finishedAt) + 86_400_000)
  for (const key of keys) {
    const ttl = await redis.pttl(key)
    t.ok(ttl > 0 && Math.abs(Date.now() + ttl - expiresAt) < 5000, `${key.split(':').pop()} expires with the job`)
  }
})
