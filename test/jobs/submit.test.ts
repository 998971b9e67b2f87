/**
 * The submit saga (src/jobs/submit.ts) step by step, against a real Redis with the real job store,
 * admission and Idempotency-Keys; only the queue is a function of the test's own.
 */
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { TrawlError } from '../../src/http/problems.js'
import { idempotencyKey, tenantPendingKey } from '../../src/jobs/keys.js'
import { readJob } from '../../src/jobs/documents.js'
import { createJobStore } from '../../src/jobs/redis-store.js'
import { redisMemory } from '../../src/redis/memory.js'
import { DEFAULT_OPTIONS, type SubmitBody } from '../../src/jobs/schemas.js'
import { admitAndCreate, claimKey, requestHash, submitJob, type SubmitDeps } from '../../src/jobs/submit.js'
import { createAdmission } from '../../src/tenants/admission.js'
import { createIdempotencyKeys, keyDigest } from '../../src/tenants/idempotency.js'
import { TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'

const TENANT = 'team-a'
const body = (...urls: string[]): SubmitBody => ({ urls, options: { ...DEFAULT_OPTIONS } })
const BODY = body('http://127.0.0.1:9/a', 'http://127.0.0.1:9/b')

/** Deps of the saga on a prefix of the test's own; `enqueued` lists what reached the queue. */
function setup (t: Test, over: Partial<SubmitDeps> = {}) {
  const prefix = testPrefix(t, 'submit')
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  const options = { prefix, ttlSeconds: 3600 }
  const enqueued: Array<{ jobId: string, lanes: number }> = []
  const deps: SubmitDeps = {
    store: createJobStore(redis, options),
    admission: createAdmission(redis, options),
    idempotency: createIdempotencyKeys(redis, options),
    memory: redisMemory(redis),
    enqueue: async (jobId, lanes) => { enqueued.push({ jobId, lanes }) },
    config: { MAX_PENDING_URLS_PER_TENANT: 10, CALLBACK_SECRET: undefined, CALLBACK_MAX_ATTEMPTS: 3, CALLBACK_RETRY_BASE_MS: 100 },
    log: { info () {} },
    ...over
  }
  const pending = async () => Number(await redis.get(tenantPendingKey(prefix, TENANT)) ?? 0)
  const storedKey = (key: string) => redis.get(idempotencyKey(prefix, TENANT, keyDigest(key)))
  return { redis, prefix, deps, enqueued, pending, storedKey }
}

const code = (err: unknown) => (err instanceof TrawlError ? err.code : String(err))

t.test('a submission creates the job queued, counts its URLs and enqueues its lanes', async (t) => {
  const s = setup(t)
  const answer = await submitJob(s.deps, { tenant: TENANT, body: BODY })
  t.equal(answer.status, 202)
  t.equal(answer.job.state, 'queued')
  t.equal(answer.job.results?.length, 2)
  t.same(s.enqueued, [{ jobId: answer.job.id, lanes: 2 }], 'min(concurrency, URLs) lanes')
  t.equal(await s.pending(), 2)
})

t.test('the answer is the job as a read of it shows it before its lanes run', async (t) => {
  const s = setup(t, { config: { MAX_PENDING_URLS_PER_TENANT: 1000, CALLBACK_SECRET: 'a-secret-of-the-test', CALLBACK_MAX_ATTEMPTS: 3, CALLBACK_RETRY_BASE_MS: 100 } })
  const urls = Array.from({ length: 150 }, (_, i) => `http://127.0.0.1:9/page/${i}`)
  const submitted: SubmitBody = { urls, options: { ...DEFAULT_OPTIONS, concurrency: 7, headers: { 'x-team': 'a' } }, callbackUrl: 'http://127.0.0.1:9/done' }
  const answer = await submitJob(s.deps, { tenant: TENANT, body: submitted })
  const read = await readJob(s.deps.store, answer.job.id, { withResults: true, offset: 0, limit: 100 }, TENANT)
  t.same(answer.job, read, 'summary, options, callback and the first page of 100, as stored')
  t.equal(answer.job.results?.length, 100)
  t.equal(answer.job.page?.next, `/jobs/${answer.job.id}?offset=100&limit=100`)
})

t.test('idempotency: the same key with the same body answers the bound job', async (t) => {
  const s = setup(t)
  const first = await submitJob(s.deps, { tenant: TENANT, body: BODY, idempotencyKey: 'k-1' })
  t.match(await s.storedKey('k-1'), new RegExp(`^bound ${first.job.id} `), 'the key is bound to the job')
  const again = await submitJob(s.deps, { tenant: TENANT, body: BODY, idempotencyKey: 'k-1' })
  t.equal(again.status, 200)
  t.equal(again.job.id, first.job.id)
  t.equal(s.enqueued.length, 1, 'the retry enqueues nothing')
  t.equal(await s.pending(), 2, 'nor counts its URLs again')
})

t.test('idempotency: the same key with a different body is IDEMPOTENCY_KEY_REUSED', async (t) => {
  const s = setup(t)
  await submitJob(s.deps, { tenant: TENANT, body: BODY, idempotencyKey: 'k-2' })
  const err = await submitJob(s.deps, { tenant: TENANT, body: body('http://127.0.0.1:9/other'), idempotencyKey: 'k-2' }).catch((e: unknown) => e)
  t.equal(code(err), 'IDEMPOTENCY_KEY_REUSED')
  t.equal(s.enqueued.length, 1)
})

t.test('idempotency: a key leased by a request still running is IDEMPOTENCY_IN_PROGRESS', async (t) => {
  const s = setup(t)
  const key = { tenant: TENANT, digest: keyDigest('k-3'), jobId: 'j_01JAAAAAAAAAAAAAAAAAAAAAAA', hash: requestHash(BODY) }
  t.equal(await claimKey(s.deps, key), null, 'the first request claims the key')
  t.match(await s.storedKey('k-3'), /^pending j_01JAAAAAAAAAAAAAAAAAAAAAAA /)
  const err = await submitJob(s.deps, { tenant: TENANT, body: BODY, idempotencyKey: 'k-3' }).catch((e: unknown) => e)
  t.equal(code(err), 'IDEMPOTENCY_IN_PROGRESS')
  t.equal((err as TrawlError).retryAfter, 1)
  t.equal(await s.pending(), 0, 'nothing was admitted')
})

t.test('idempotency: a key bound to a job that has expired is claimed again', async (t) => {
  const s = setup(t)
  const hash = requestHash(BODY)
  await s.deps.idempotency.claim(TENANT, keyDigest('k-4'), 'j_01JGGGGGGGGGGGGGGGGGGGGGGG', hash)
  await s.deps.idempotency.bind(TENANT, keyDigest('k-4'), 'j_01JGGGGGGGGGGGGGGGGGGGGGGG', hash)
  const key = { tenant: TENANT, digest: keyDigest('k-4'), jobId: 'j_01JHHHHHHHHHHHHHHHHHHHHHHH', hash }
  t.equal(await claimKey(s.deps, key), null, 'the new request holds the key')
  t.match(await s.storedKey('k-4'), /^pending j_01JHHHHHHHHHHHHHHHHHHHHHHH /)
})

t.test('admission: a refusal releases the Idempotency-Key and creates nothing', async (t) => {
  const s = setup(t)
  s.deps.config = { ...s.deps.config, MAX_PENDING_URLS_PER_TENANT: 1 }
  const err = await submitJob(s.deps, { tenant: TENANT, body: BODY, idempotencyKey: 'k-5' }).catch((e: unknown) => e)
  t.equal(code(err), 'TOO_MANY_PENDING_URLS')
  t.equal((err as TrawlError).retryAfter, 5)
  t.equal(await s.storedKey('k-5'), null, 'the key is free for a retry')
  t.equal(await s.pending(), 0)
  t.same(await s.redis.keys(`${s.prefix}:job:*`), [], 'no job was written')
  t.same(s.enqueued, [])
})

t.test('admission: URLs admitted for a job that could not be written are given back', async (t) => {
  const s = setup(t)
  const failing = { ...s.deps.store, create: async () => { throw new Error('write failed') } }
  const job = { id: 'j_01JCCCCCCCCCCCCCCCCCCCCCCC', tenant: TENANT, urls: BODY.urls, options: BODY.options, now: Date.now() }
  await t.rejects(admitAndCreate({ ...s.deps, store: failing }, job), /write failed/)
  t.equal(await s.pending(), 0)
  await admitAndCreate(s.deps, job)
  t.equal(await s.pending(), 2, 'a write that works keeps the count')
})

t.test('idempotency: a key that cannot be bound leaves no job, no URLs counted and the key free', async (t) => {
  const s = setup(t)
  s.deps.idempotency = { ...s.deps.idempotency, bind: async () => { throw new Error('bind refused') } }
  await t.rejects(submitJob(s.deps, { tenant: TENANT, body: BODY, idempotencyKey: 'k-8' }), /bind refused/)
  t.equal(await s.pending(), 0, 'no URL stays counted as pending')
  t.same(await s.redis.keys(`${s.prefix}:job:*`), [], 'no job is left behind, queued with nobody to run it')
  t.equal(await s.storedKey('k-8'), null, 'the key is free for a retry')
  t.same(s.enqueued, [])
})

t.test('enqueue: a job whose lanes cannot be queued ends failed', async (t) => {
  let jobId = ''
  const s = setup(t, { enqueue: async (id) => { jobId = id; throw new Error('queue down') } })
  await t.rejects(submitJob(s.deps, { tenant: TENANT, body: BODY, idempotencyKey: 'k-6' }), /queue down/)
  const record = await s.deps.store.readRecord(jobId, { withResults: false, offset: 0, limit: 1 })
  t.equal(record?.meta.state, 'failed')
  t.same(record?.meta.error, { code: 'INTERNAL', message: 'the job could not be queued' })
  t.equal(record?.meta.failed, 2, 'every URL counts as failed')
  t.equal(await s.pending(), 0, 'and no longer as pending')
})

t.test('a callback needs CALLBACK_SECRET', async (t) => {
  const s = setup(t)
  const err = await submitJob(s.deps, { tenant: TENANT, body: { ...BODY, callbackUrl: 'http://127.0.0.1:9/cb' } }).catch((e: unknown) => e)
  t.equal(code(err), 'VALIDATION_FAILED')
  t.equal(await s.pending(), 0)
})
