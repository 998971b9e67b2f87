import { Readable } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { ContentNotFoundError, JobNotFoundError, UnavailableError, problemSchema } from '../http/problems.js'
import { jobDocument } from '../jobs/documents.js'
import { JOB_ID_PATTERN, type ResultItem } from '../jobs/schemas.js'
import type { JobStore } from '../jobs/store.js'
import { archiveStream } from './archive.js'
import { ndjsonStream } from './ndjson.js'
import { ContentStoreError, type ContentStore, type StoredBody } from './store.js'

/**
 * The routes that read bodies and results out in bulk: one stored body
 * (`GET /jobs/{id}/results/{index}/content`), every result item as NDJSON
 * (`GET /jobs/{id}/results`) and a ZIP of every stored body (`GET /jobs/{id}/archive`). Each
 * streams: results are read from Redis a page at a time as the client reads, bodies from the
 * store one at a time, so a slow client holds back only its own answer and memory stays flat.
 * Each also answers HEAD with its headers and no body (registered here rather than by Fastify,
 * whose HEAD would read the whole stream to throw it away).
 */
export interface ContentRoutesDeps {
  store: Pick<JobStore, 'readRecord' | 'result'>
  content: ContentStore
}

/** Result items read from Redis per page while streaming. */
const PAGE = 1000

const idParams = z.object({ id: z.string() })
const stream = z.custom<Readable>((v) => v instanceof Readable)
const answers = { 200: stream, 401: problemSchema, 404: problemSchema, 503: problemSchema }
// The body is someone else's page: never let a browser run it in this origin.
const SANDBOX = "default-src 'none'; frame-ancestors 'none'; sandbox"

export const contentRoutes: FastifyPluginAsyncZod<ContentRoutesDeps> = async function contentRoutes (app, deps) {
  const { store, content } = deps

  app.route({
    method: ['GET', 'HEAD'],
    url: '/jobs/:id/results/:index/content',
    schema: {
      params: z.object({ id: z.string(), index: z.coerce.number().int().min(0) }),
      headers: z.object({ 'if-none-match': z.string().optional() }),
      response: { ...answers, 304: z.undefined(), 400: problemSchema }
    },
    handler: async (request, reply) => {
      const { id, index } = request.params
      if (!JOB_ID_PATTERN.test(id)) throw new JobNotFoundError(id)
      const result = await store.result(id, index, request.tenant)
      if (result === 'no-job') throw new JobNotFoundError(id)
      if (result === null || !result.hasContent || result.sha256 === null) throw notStored(id, index)
      const etag = `"${result.sha256}"`
      reply.header('etag', etag)
      if (etagMatches(request.headers['if-none-match'], etag)) return reply.code(304).send()
      const stored = await openBody(content, id, index)
      if (stored === null) throw notStored(id, index)
      reply.header('content-type', result.contentType ?? 'application/octet-stream')
      reply.header('content-length', stored.size)
      reply.header('x-content-type-options', 'nosniff')
      reply.header('content-security-policy', SANDBOX)
      return sendOrHead(request, reply, stored.whole ?? stored.body)
    }
  })

  app.route({
    method: ['GET', 'HEAD'],
    url: '/jobs/:id/results',
    schema: { params: idParams, response: answers },
    handler: async (request, reply) => {
      const { id } = request.params
      await existingJob(store, id, request.tenant)
      reply.header('content-type', 'application/x-ndjson')
      reply.header('cache-control', 'no-store')
      return sendOrHead(request, reply, () => ndjsonStream(resultItems(store, id, request.tenant)))
    }
  })

  app.route({
    method: ['GET', 'HEAD'],
    url: '/jobs/:id/archive',
    schema: { params: idParams, response: answers },
    handler: async (request, reply) => {
      const { id } = request.params
      const total = await existingJob(store, id, request.tenant)
      reply.header('content-type', 'application/zip')
      reply.header('content-disposition', `attachment; filename="${id}.zip"`)
      reply.header('cache-control', 'no-store')
      // A small buffer on each side of archiver: a slow reader leaves little in memory.
      const open = (): Readable => archiveStream({ jobId: id, total, store: content, items: () => resultItems(store, id, request.tenant) }, { highWaterMark: 256 * 1024 })
      return sendOrHead(request, reply, open)
    }
  })
}

/** The job's URL count; JOB_NOT_FOUND when it does not exist for this tenant. */
async function existingJob (store: ContentRoutesDeps['store'], id: string, tenant: string): Promise<number> {
  const record = JOB_ID_PATTERN.test(id) ? await store.readRecord(id, { withResults: false, offset: 0, limit: 1 }, tenant) : null
  if (record === null) throw new JobNotFoundError(id)
  return record.meta.total
}

/**
 * Every result item of the job in input order, read a page at a time as the consumer pulls;
 * ends early if the job goes (purged or expired) meanwhile.
 */
export async function * resultItems (store: Pick<JobStore, 'readRecord'>, id: string, tenant: string): AsyncGenerator<ResultItem> {
  for (let offset = 0; ; offset += PAGE) {
    const record = await store.readRecord(id, { withResults: true, offset, limit: PAGE }, tenant)
    if (record === null) return
    yield * jobDocument(record, Date.now()).results ?? []
    if (offset + PAGE >= record.meta.total) return
  }
}

/** The stream for GET; headers only for HEAD (the stream is not opened, or closed at once). */
function sendOrHead (request: FastifyRequest, reply: FastifyReply, body: Readable | Buffer | (() => Readable)): FastifyReply {
  if (request.method === 'HEAD') {
    if (body instanceof Readable) body.destroy()
    return reply.send()
  }
  return reply.send(typeof body === 'function' ? body() : body)
}

async function openBody (content: ContentStore, jobId: string, index: number): Promise<StoredBody | null> {
  try {
    return await content.get({ jobId, index })
  } catch (err) {
    if (err instanceof ContentStoreError) throw new UnavailableError('The content store does not answer; try again shortly.', { cause: err })
    throw err
  }
}

/** If-None-Match against one strong ETag: `*`, or a list that names it (weak or not, RFC 9110 13.1.2). */
function etagMatches (header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  if (header.trim() === '*') return true
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)
}

function notStored (id: string, index: number): ContentNotFoundError {
  return new ContentNotFoundError(`Result ${index} of job ${id} has no stored body: it is not finished, it failed, the job does not keep content, or it has expired or been purged.`)
}
