import { createHash } from 'node:crypto'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { ulid } from 'ulid'
import { z } from 'zod'
import type { Config } from '../config.js'
import { ContentNotFoundError, JobFinishedError, JobNotFoundError, TrawlError, ValidationFailedError } from '../http/problems.js'
import type { FinishWatcher } from '../events/finish-watcher.js'
import { enqueueJob, type Queues } from './queue.js'
import { FINAL_JOB_STATES, JOB_ID_PATTERN, jobDocumentSchema, submitBodySchema, type JobDocument, type SubmitBody } from './schemas.js'
import type { JobStore } from './store.js'
import { problemSchema } from '../http/problem-schema.js'

export interface JobRoutesDeps {
  config: Config
  store: JobStore
  queues: Queues
  watcher: FinishWatcher
}

// Any id is accepted here: one that is not a job id is a job that does not exist (404).
const idParams = z.object({ id: z.string() })
const readQuery = z.object({
  wait: z.coerce.number().min(0).max(60).default(0),
  offset: z.coerce.number().int().min(0).max(100_000_000).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  results: z.enum(['none', 'page']).default('page')
})
// The IETF draft allows any visible ASCII; a bound keeps the key cheap to store.
const idempotencyHeader = z.string().regex(/^[\x21-\x7e]{1,255}$/, '1 to 255 visible ASCII characters').optional()

/** A stable hash of what a submission asks for, after defaults: equal requests, equal hashes. */
function requestHash (body: SubmitBody): string {
  const canonical = JSON.stringify({
    urls: body.urls,
    options: { ...body.options, headers: Object.fromEntries(Object.entries(body.options.headers).sort()) },
    callbackUrl: body.callbackUrl ?? null
  })
  return createHash('sha256').update(canonical).digest('base64url')
}

export const jobRoutes: FastifyPluginAsyncZod<JobRoutesDeps> = async function jobRoutes (app, deps) {
  const { config, store, queues, watcher } = deps
  const bodySchema = submitBodySchema(config.MAX_URLS_PER_JOB)

  async function readOr404 (id: string, tenant: string, query: { offset: number, limit: number, results: string }): Promise<JobDocument> {
    const doc = JOB_ID_PATTERN.test(id)
      ? await store.read(id, { withResults: query.results !== 'none', offset: query.offset, limit: query.limit }, tenant)
      : null
    if (!doc) throw new JobNotFoundError(id)
    return doc
  }

  app.post('/jobs', {
    config: { rateLimit: { max: config.RATE_LIMIT_PER_MINUTE, timeWindow: 60_000 } },
    schema: {
      body: bodySchema,
      headers: z.object({ 'idempotency-key': idempotencyHeader }),
      response: {
        200: jobDocumentSchema,
        202: jobDocumentSchema,
        400: problemSchema,
        401: problemSchema,
        409: problemSchema,
        413: problemSchema,
        415: problemSchema,
        422: problemSchema,
        429: problemSchema,
        503: problemSchema
      }
    }
  }, async (request, reply) => {
    const { urls, options, callbackUrl } = request.body
    const tenant = request.tenant
    if (callbackUrl !== undefined && config.CALLBACK_SECRET === undefined) {
      throw new ValidationFailedError([{ path: '/callbackUrl', message: 'callbacks are off: the server has no CALLBACK_SECRET' }])
    }
    const id = `j_${ulid()}`

    // Idempotency-Key: the first request binds the key to this job; a retry gets that job back.
    const key = request.headers['idempotency-key']
    const keyDigest = key === undefined ? null : createHash('sha256').update(key).digest('base64url')
    const hash = requestHash(request.body)
    for (let tries = 0; tries < 2 && keyDigest !== null; tries++) { // eslint-disable-line no-unmodified-loop-condition -- bounded by tries
      const bound = await store.claimIdempotencyKey(tenant, keyDigest, id, hash)
      if (bound === null) break
      if (bound.requestHash !== hash) {
        throw new TrawlError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was sent before with a different request; use a new key for a new request.')
      }
      if (bound.state === 'pending') {
        throw new TrawlError('IDEMPOTENCY_IN_PROGRESS', 'The first request with this Idempotency-Key is still being processed; retry shortly.', { retryAfter: 1 })
      }
      const original = await store.read(bound.jobId, { withResults: true, offset: 0, limit: 100 }, tenant)
      if (original !== null) return reply.code(200).header('location', `/jobs/${bound.jobId}`).send(original)
      // The job has expired: the key is free again (a second claim below takes it).
      if (tries > 0) throw new TrawlError('IDEMPOTENCY_IN_PROGRESS', 'The Idempotency-Key is being reused; retry shortly.', { retryAfter: 1 })
      await store.releaseIdempotencyKey(tenant, keyDigest)
    }

    try {
      if (!await store.admit(tenant, urls.length, config.MAX_PENDING_URLS_PER_TENANT)) {
        throw new TrawlError('TOO_MANY_PENDING_URLS', `This tenant already has URLs waiting; at most ${config.MAX_PENDING_URLS_PER_TENANT} may be pending at once. Retry when some jobs have finished.`, { retryAfter: 5 })
      }
      try {
        await store.create({ id, tenant, urls, options, callbackUrl, now: Date.now() })
      } catch (err) {
        await store.unadmit(tenant, urls.length).catch(() => {})
        throw err
      }
    } catch (err) {
      if (keyDigest !== null) await store.releaseIdempotencyKey(tenant, keyDigest).catch(() => {})
      throw err
    }
    if (keyDigest !== null) await store.bindIdempotencyKey(tenant, keyDigest, id, hash)
    request.log.info({ jobId: id, urls: urls.length, tenant }, 'job submitted')
    // Read before the lanes exist, so the answer shows the job as submitted: `queued`.
    const doc = await readOr404(id, tenant, { offset: 0, limit: 100, results: 'page' })
    try {
      const callback = callbackUrl === undefined ? null : { attempts: config.CALLBACK_MAX_ATTEMPTS, backoffMs: config.CALLBACK_RETRY_BASE_MS }
      await enqueueJob(queues, id, Math.min(options.concurrency, urls.length), callback)
    } catch (err) {
      // The record exists but no worker will ever see it: end it so that nobody waits on it.
      await store.finish(id, 'failed', { code: 'INTERNAL', message: 'the job could not be queued' }).catch(() => {})
      throw err
    }
    return reply.code(202).header('location', `/jobs/${id}`).send(doc)
  })

  app.get('/jobs/:id', {
    schema: {
      params: idParams,
      querystring: readQuery,
      response: { 200: jobDocumentSchema, 400: problemSchema, 401: problemSchema, 404: problemSchema, 503: problemSchema }
    }
  }, async (request) => {
    const { id } = request.params
    const query = request.query
    let doc = await readOr404(id, request.tenant, query)
    if (query.wait > 0 && !FINAL_JOB_STATES.has(doc.state)) {
      const deadline = Date.now() + query.wait * 1000
      const gone = new AbortController()
      request.raw.once('close', () => gone.abort())
      // Re-read every few seconds as well as on the finish message, so a message lost while the
      // subscriber reconnected costs a little latency, never a hung request.
      while (!FINAL_JOB_STATES.has(doc.state) && Date.now() < deadline && !gone.signal.aborted && !watcher.closed) {
        await watcher.wait(id, Math.min(deadline - Date.now(), 2000), gone.signal)
        doc = await readOr404(id, request.tenant, query)
      }
    }
    return doc
  })

  app.delete('/jobs/:id', {
    schema: {
      params: idParams,
      response: { 200: jobDocumentSchema, 401: problemSchema, 404: problemSchema, 409: problemSchema, 503: problemSchema }
    }
  }, async (request) => {
    const { id } = request.params
    if (!JOB_ID_PATTERN.test(id)) throw new JobNotFoundError(id)
    const before = await store.finish(id, 'cancelled', null, request.tenant)
    if (before === 'missing') throw new JobNotFoundError(id)
    if (before === 'completed' || before === 'failed') throw new JobFinishedError(id, before)
    if (before !== 'cancelled') request.log.info({ jobId: id }, 'job cancelled')
    return readOr404(id, request.tenant, { offset: 0, limit: 100, results: 'page' })
  })

  app.get('/jobs/:id/results/:index/content', {
    schema: {
      params: z.object({ id: z.string(), index: z.coerce.number().int().min(0) }),
      response: { 200: z.custom<Buffer>((v) => Buffer.isBuffer(v)), 400: problemSchema, 401: problemSchema, 404: problemSchema, 503: problemSchema }
    }
  }, async (request, reply) => {
    const { id, index } = request.params
    if (!JOB_ID_PATTERN.test(id)) throw new JobNotFoundError(id)
    const found = await store.content(id, index, request.tenant)
    if (found === 'no-job') throw new JobNotFoundError(id)
    if (found === 'no-content') {
      throw new ContentNotFoundError(`Result ${index} of job ${id} has no stored body: it is not finished, it failed, the job does not keep content, or it has expired.`)
    }
    reply.header('content-type', found.contentType ?? 'application/octet-stream')
    reply.header('x-content-type-options', 'nosniff')
    // The body is someone else's page: never let a browser run it in this origin.
    reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'; sandbox")
    return reply.send(found.body)
  })
}
