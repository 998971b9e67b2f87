import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { ulid } from 'ulid'
import { check, contractTest, type Answer } from '../helpers/contract/check.js'
import { json, startContractService } from '../helpers/contract/service.js'
import { openValidatorAt } from '../helpers/contract/spec.js'
import { TEST_REDIS_URL } from '../helpers/redis.js'
import { startTrawl } from '../helpers/trawl.js'

// POST /jobs against openapi.yaml: every answer, for real.

const { trawl, site, gate, inject } = await startContractService()
const validSubmission = openValidatorAt('#/components/schemas/JobSubmission')

contractTest('submit: 202, queued, with Location and a pending result per URL', async (t) => {
  const origin = new URL(site.urls[0] ?? '').origin
  const payload = {
    urls: [site.urls[0], site.urls[1], `${origin}/wiki/Missing`, 'http://127.0.0.1:9/closed'],
    options: { concurrency: 2, retries: 0, headers: { 'Accept-Language': 'en' } }
  }
  t.ok(validSubmission(payload), 'the payload matches JobSubmission', { errors: validSubmission.errors })
  const res = await inject('POST', '/jobs', { payload })
  const job = json(check(t, res, 'post', '/jobs'))
  t.equal(res.statusCode, 202)
  t.equal(job.state, 'queued', '202 is always queued')
  t.equal(res.headers.location, `/jobs/${job.id}`)
  t.same(job.results?.map((r) => r.state), ['pending', 'pending', 'pending', 'pending'])
  t.same(job.options.headers, { 'accept-language': 'en' }, 'header names as the fetch will send them')
})

contractTest('submit: Idempotency-Key: 200 replay, 422 another request, 409 in progress, 400 malformed', async (t) => {
  const payload = { urls: [gate.url('/fast/idem')] }
  const key = `contract-${randomUUID()}`
  const first = await inject('POST', '/jobs', { payload, headers: { 'idempotency-key': key } })
  const job = json(check(t, first, 'post', '/jobs'))
  t.equal(first.statusCode, 202)

  // The same request again, also with the defaults spelled out: the same job, not a second one.
  for (const body of [payload, { ...payload, options: { concurrency: 5, keepContent: true } }]) {
    const replay = await inject('POST', '/jobs', { payload: body, headers: { 'idempotency-key': key } })
    t.equal(replay.statusCode, 200, 'the same key and request: 200')
    t.equal(json(check(t, replay, 'post', '/jobs')).id, job.id, 'the job the first request created')
    t.equal(replay.headers.location, `/jobs/${job.id}`)
  }

  const other = await inject('POST', '/jobs', { payload: { urls: [gate.url('/fast/other')] }, headers: { 'idempotency-key': key } })
  t.equal(other.statusCode, 422)
  t.equal((check(t, other, 'post', '/jobs') as { code: string }).code, 'IDEMPOTENCY_KEY_REUSED')

  // 409 is the answer while the first request with a key is between claiming the key and
  // creating its job. That window is too short to hit on purpose, so the test leaves Redis as
  // such a request does: the key claimed (`pending <jobId> <hash>`), with the same request
  // hash, for a job not created yet.
  const key2 = `contract-${randomUUID()}`
  const job2 = json(check(t, await inject('POST', '/jobs', { payload, headers: { 'idempotency-key': key2 } }), 'post', '/jobs'))
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  const slots = await redis.keys(`${trawl.prefix}:tenant:public:idem:*`)
  const values = await Promise.all(slots.map((k) => redis.get(k)))
  const slot = slots[values.findIndex((v) => v?.startsWith(`bound ${job2.id} `))]
  t.ok(slot, 'the key is bound in Redis to the job and the request hash')
  const [, , hash] = (values[slots.indexOf(slot ?? '')] ?? '').split(' ')
  await redis.set(slot ?? '', `pending j_${ulid()} ${hash}`, 'PX', 60_000)
  const busy = await inject('POST', '/jobs', { payload, headers: { 'idempotency-key': key2 } })
  t.equal(busy.statusCode, 409)
  t.equal((check(t, busy, 'post', '/jobs') as { code: string }).code, 'IDEMPOTENCY_IN_PROGRESS')

  // A key bound to a job that has expired since is free again: the retry is a new job.
  const gone = `j_${ulid()}`
  await redis.set(slot ?? '', `bound ${gone} ${hash}`, 'PX', 60_000)
  const again = await inject('POST', '/jobs', { payload, headers: { 'idempotency-key': key2 } })
  t.equal(again.statusCode, 202, 'a key whose job has expired makes a new job')
  const job3 = json(check(t, again, 'post', '/jobs'))
  t.not(job3.id, gone)
  t.not(job3.id, job2.id)
  t.match(await redis.get(slot ?? ''), new RegExp(`^bound ${job3.id} `), 'and the key is bound to it')

  const longest = await inject('POST', '/jobs', { payload, headers: { 'idempotency-key': '~'.repeat(255) } })
  t.equal(longest.statusCode, 202, '255 visible ASCII characters are a key')
  check(t, longest, 'post', '/jobs')
  for (const bad of ['', 'with space', 'x'.repeat(256)]) {
    const res = await inject('POST', '/jobs', { payload, headers: { 'idempotency-key': bad } })
    t.equal(res.statusCode, 400, `Idempotency-Key ${JSON.stringify(bad.slice(0, 20))}`)
    t.same((check(t, res, 'post', '/jobs') as { errors?: Array<{ path: string }> }).errors?.map((e) => e.path), ['/headers/idempotency-key'])
  }
})

contractTest('submit: 400 lists each bad field as a JSON pointer, and the documented request schema refuses it too', async (t) => {
  const cases: Array<{ payload: unknown, paths: string[], schemaRefuses: boolean }> = [
    { payload: { urls: [] }, paths: ['/urls'], schemaRefuses: true },
    { payload: {}, paths: ['/urls'], schemaRefuses: true },
    // A JSON pointer to the whole body is "" (RFC 6901); "/" would name a member called "".
    { payload: ['http://a.test/'], paths: [''], schemaRefuses: true },
    { payload: { urls: ['http://a.test/', 'not a url', 'ftp://x.test/f'] }, paths: ['/urls/1', '/urls/2'], schemaRefuses: true },
    { payload: { urls: [`http://a.test/${'x'.repeat(2100)}`] }, paths: ['/urls/0'], schemaRefuses: true },
    // The URL parser would drop white space around a URL; the server refuses it instead.
    { payload: { urls: [' http://a.test/', 'http://a.test/\n', '\thttp://a.test/\t', 'http://a.test/ok'] }, paths: ['/urls/0', '/urls/1', '/urls/2'], schemaRefuses: true },
    { payload: { urls: ['http://a.test/'], extra: 1 }, paths: [''], schemaRefuses: true },
    { payload: { urls: ['http://a.test/'], callbackUrl: 'mailto:a@b.test' }, paths: ['/callbackUrl'], schemaRefuses: true },
    { payload: { urls: ['http://a.test/'], options: { concurrency: 0 } }, paths: ['/options/concurrency'], schemaRefuses: true },
    { payload: { urls: ['http://a.test/'], options: { concurrency: 1001 } }, paths: ['/options/concurrency'], schemaRefuses: true },
    { payload: { urls: ['http://a.test/'], options: { timeoutMs: 99 } }, paths: ['/options/timeoutMs'], schemaRefuses: true },
    { payload: { urls: ['http://a.test/'], options: { timeoutMs: 300_001 } }, paths: ['/options/timeoutMs'], schemaRefuses: true },
    { payload: { urls: ['http://a.test/'], options: { retries: 11 } }, paths: ['/options/retries'], schemaRefuses: true },
    { payload: { urls: ['http://a.test/'], options: { maxBytes: 0 } }, paths: ['/options/maxBytes'], schemaRefuses: true },
    { payload: { urls: ['http://a.test/'], options: { maxRedirects: 21 } }, paths: ['/options/maxRedirects'], schemaRefuses: true },
    { payload: { urls: ['http://a.test/'], options: { keepContent: 'yes' } }, paths: ['/options/keepContent'], schemaRefuses: true },
    { payload: { urls: ['http://a.test/'], options: { speed: 'max' } }, paths: ['/options'], schemaRefuses: true },
    { payload: { urls: ['http://a.test/'], options: { headers: { 'x-a': 'b\r\nx-c: d' } } }, paths: ['/options/headers/x-a'], schemaRefuses: true },
    { payload: { urls: ['http://a.test/'], options: { headers: { 'bad name': 'x' } } }, paths: ['/options/headers/bad name'], schemaRefuses: true },
    { payload: { urls: ['http://a.test/'], options: { headers: { 'a/b': 'x' } } }, paths: ['/options/headers/a~1b'], schemaRefuses: true },
    { payload: { urls: ['http://a.test/'], options: { headers: { 'a~b c': 'x' } } }, paths: ['/options/headers/a~0b c'], schemaRefuses: true },
    // Only the description can say which header names are refused.
    { payload: { urls: ['http://a.test/'], options: { headers: { Connection: 'close' } } }, paths: ['/options/headers/Connection'], schemaRefuses: false },
    // The spec's maxItems is the default MAX_URLS_PER_JOB; this server takes 20.
    { payload: { urls: Array.from({ length: 21 }, (_, i) => `http://a.test/${i}`) }, paths: ['/urls'], schemaRefuses: false }
  ]
  for (const c of cases) {
    const res = await inject('POST', '/jobs', { payload: JSON.stringify(c.payload), headers: { 'content-type': 'application/json' } })
    const problem = check(t, res, 'post', '/jobs') as { errors?: Array<{ path: string }> }
    t.equal(res.statusCode, 400, JSON.stringify(c.payload).slice(0, 80))
    t.ok(problem?.errors?.length, 'errors are listed')
    t.same(problem?.errors?.map((e) => e.path).sort(), c.paths.sort(), 'errors name the bad fields')
    if (c.schemaRefuses) t.notOk(validSubmission(c.payload), 'JobSubmission refuses it too')
  }

  for (const [raw, name] of [['{"urls": [', 'malformed JSON'], ['', 'empty body']] as const) {
    const res = await inject('POST', '/jobs', { payload: raw, headers: { 'content-type': 'application/json' } })
    const problem = check(t, res, 'post', '/jobs') as { code: string, errors?: unknown }
    t.equal(res.statusCode, 400, name)
    t.equal(problem.code, 'VALIDATION_FAILED')
    t.equal(problem.errors, undefined, `${name}: no errors`)
  }
})

contractTest('submit: 415 for a body that is not JSON, 413 for one that is too large', async (t) => {
  const form = await inject('POST', '/jobs', { payload: 'urls=http://a.test/', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  t.equal(form.statusCode, 415)
  check(t, form, 'post', '/jobs')
  const huge = await inject('POST', '/jobs', { payload: JSON.stringify({ urls: [`http://a.test/${'x'.repeat(1_100_000)}`] }), headers: { 'content-type': 'application/json' } })
  t.equal(huge.statusCode, 413)
  check(t, huge, 'post', '/jobs')
})

contractTest('submit: 429 from the per-tenant rate limit and the pending-URL cap', async (t) => {
  const { api } = await startTrawl(t, { worker: false, env: { RATE_LIMIT_PER_MINUTE: '2', MAX_PENDING_URLS_PER_TENANT: '2' } })
  const post = (urls: string[]) => api.app.inject({ method: 'POST', url: '/jobs', payload: { urls } }) as Promise<Answer>
  const first = await post(['http://a.test/1', 'http://a.test/2'])
  check(t, first, 'post', '/jobs')
  t.equal(first.statusCode, 202)
  t.equal(String(first.headers['x-ratelimit-limit']), '2')
  t.equal(String(first.headers['x-ratelimit-remaining']), '1')

  const full = await post(['http://a.test/3'])
  t.equal(full.statusCode, 429, 'no room for one more pending URL')
  t.equal((check(t, full, 'post', '/jobs') as { code: string }).code, 'TOO_MANY_PENDING_URLS')
  t.equal(String(full.headers['retry-after']), '5')
  t.equal(String(full.headers['x-ratelimit-remaining']), '0', 'the refused submission counted')

  const limited = await post(['http://a.test/4'])
  t.equal(limited.statusCode, 429)
  t.equal((check(t, limited, 'post', '/jobs') as { code: string }).code, 'RATE_LIMITED', 'the third submission in a minute')
  t.equal(String(limited.headers['x-ratelimit-remaining']), '0')
  const retryAfter = Number(limited.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter} is within the minute`)
})
