import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { Config } from '../config.js'
import type { RedisMemory } from '../redis/memory.js'
import { JobFinishedError, JobNotFoundError, problemSchema } from '../http/problems.js'
import type { FinishWatcher } from '../events/finish-watcher.js'
import type { Admission } from '../tenants/admission.js'
import type { IdempotencyKeys } from '../tenants/idempotency.js'
import { jobListDocument, jobListSchema, jobUrl, readJob } from './documents.js'
import { decodeCursor, LIST_LIMIT, type ListCursor } from './listing.js'
import { enqueueJob, type Queues } from './queue.js'
import { FINAL_JOB_STATES, JOB_ID_PATTERN, JOB_STATES, jobDocumentSchema, submitBodySchema, type JobDocument } from './schemas.js'
import type { JobStore } from './store.js'
import { submitJob } from './submit.js'

export interface JobRoutesDeps {
  config: Config
  store: JobStore
  admission: Admission
  idempotency: IdempotencyKeys
  /** How full Redis is: POST /jobs refuses work while it is near full. */
  memory: RedisMemory
  queues: Queues
  watcher: FinishWatcher
  /** `DELETE ?purge=true`: the job, its history and bodies go now (content/purge.ts); false: no such job. */
  purge(id: string, tenant: string): Promise<boolean>
  /** Records a new job's bodies for retention before it is written (content/retention.ts). */
  retain(job: { id: string, now: number, options: { keepContent: boolean } }): Promise<void>
}

// Any id is accepted here: one that is not a job id is a job that does not exist (404).
const idParams = z.object({ id: z.string() })
const readQuery = z.object({
  wait: z.coerce.number().min(0).max(60).default(0),
  offset: z.coerce.number().int().min(0).max(100_000_000).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  results: z.enum(['none', 'page']).default('page')
})
// `GET /jobs`: `state` may repeat (one value arrives as a string, several as an array); the
// cursor is one this service wrote into `page.next`, anything else is a 400.
const listQuery = z.object({
  state: z.preprocess((v) => (typeof v === 'string' ? [v] : v), z.array(z.enum(JOB_STATES)).min(1).max(20)).optional(),
  limit: z.coerce.number().int().min(1).max(LIST_LIMIT.max).default(LIST_LIMIT.default),
  cursor: z.string().optional().transform((text, ctx): ListCursor | null => {
    if (text === undefined) return null
    const cursor = decodeCursor(text)
    if (cursor === null) ctx.addIssue({ code: 'custom', message: 'not a cursor from page.next' })
    return cursor
  })
})
// The IETF draft allows any visible ASCII; a bound keeps the key cheap to store.
const idempotencyHeader = z.string().regex(/^[\x21-\x7e]{1,255}$/, '1 to 255 visible ASCII characters').optional()

export const jobRoutes: FastifyPluginAsyncZod<JobRoutesDeps> = async function jobRoutes (app, deps) {
  const { config, store, watcher } = deps
  const bodySchema = submitBodySchema(config.MAX_URLS_PER_JOB)
  // The job's retention goes with its creation (one round trip for both), and the creation
  // counts only once both are written: bodies of a job whose every process dies are still
  // removed, since no body is written before the lanes are queued, after this.
  const createRetained: JobStore['create'] = async (job, ro) => {
    const [retained, created] = await Promise.allSettled([deps.retain(job), store.create(job, ro)])
    if (retained.status === 'fulfilled' && created.status === 'fulfilled') return created.value
    if (created.status === 'fulfilled') await store.purge(job.id).catch(() => {})
    throw retained.status === 'rejected' ? retained.reason : (created as PromiseRejectedResult).reason
  }
  const submitDeps = (log: { info(obj: object, msg: string): void }) => ({
    ...deps,
    store: { ...store, create: createRetained },
    enqueue: enqueueJob.bind(null, deps.queues),
    log
  })

  async function readOr404 (id: string, tenant: string, query: { offset: number, limit: number, results: string }): Promise<JobDocument> {
    const doc = JOB_ID_PATTERN.test(id)
      ? await readJob(store, id, { withResults: query.results !== 'none', offset: query.offset, limit: query.limit }, tenant)
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
    const { status, job } = await submitJob(submitDeps(request.log), {
      tenant: request.tenant,
      body: request.body,
      idempotencyKey: request.headers['idempotency-key']
    })
    return reply.code(status).header('location', jobUrl(job.id)).send(job)
  })

  app.get('/jobs', {
    schema: {
      querystring: listQuery,
      response: { 200: jobListSchema, 400: problemSchema, 401: problemSchema, 503: problemSchema }
    }
  }, async (request) => {
    const { state, limit, cursor } = request.query
    const query = { states: state === undefined ? null : [...new Set(state)], limit, after: cursor }
    const page = await store.list(request.tenant, query)
    return jobListDocument(page, query, Date.now())
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
      querystring: z.object({ purge: z.enum(['true', 'false']).default('false') }),
      response: { 200: jobDocumentSchema, 204: z.undefined(), 400: problemSchema, 401: problemSchema, 404: problemSchema, 409: problemSchema, 503: problemSchema }
    }
  }, async (request, reply) => {
    const { id } = request.params
    if (!JOB_ID_PATTERN.test(id)) throw new JobNotFoundError(id)
    if (request.query.purge === 'true') {
      if (!await deps.purge(id, request.tenant)) throw new JobNotFoundError(id)
      request.log.info({ jobId: id }, 'job purged')
      return reply.code(204).send()
    }
    const before = await store.finish(id, 'cancelled', null, request.tenant)
    if (before === 'missing') throw new JobNotFoundError(id)
    if (before === 'completed' || before === 'failed') throw new JobFinishedError(id, before)
    if (before !== 'cancelled') request.log.info({ jobId: id }, 'job cancelled')
    return readOr404(id, request.tenant, { offset: 0, limit: 100, results: 'page' })
  })
}
