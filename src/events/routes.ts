import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { FastifyReply } from 'fastify'
import { JobNotFoundError, problemSchema } from '../http/problems.js'
import type { EventHub, StreamEntry } from './hub.js'
import { FINAL_JOB_STATES, JOB_ID_PATTERN } from '../jobs/schemas.js'
import { readJob } from '../jobs/documents.js'
import type { JobStore } from '../jobs/store.js'
import { parseEvent, readEvents, type JobEvent } from './entries.js'
import type { Metrics } from '../metrics/metrics.js'

const EVENT_ID = /^\d{1,20}-\d{1,20}$/

function sseText (id: string, event: string, json: string): string {
  return `id: ${id}\nevent: ${event}\ndata: ${json}\n\n`
}

// Live entries are the same objects for every client of a job, so each is parsed and
// serialised once per process rather than once per client.
const renderedEntries = new WeakMap<StreamEntry, { text: string, final: boolean }>()
function rendered (jobId: string, entry: StreamEntry): { text: string, final: boolean } {
  let r = renderedEntries.get(entry)
  if (r === undefined) {
    const event = parseEvent(jobId, entry[0], entry[1])
    r = { text: sseText(event.id, event.event, JSON.stringify(event.data)), final: event.final }
    renderedEntries.set(entry, r)
  }
  return r
}

// A batch the hub hands to every client of a stream is one array: its text is built once.
const renderedBatches = new WeakMap<StreamEntry[], { text: string, final: boolean }>()
function renderedBatch (jobId: string, entries: StreamEntry[]): { text: string, final: boolean } {
  let b = renderedBatches.get(entries)
  if (b === undefined) {
    let text = ''
    let final = false
    for (const entry of entries) {
      const r = rendered(jobId, entry)
      text += r.text
      if (r.final) {
        final = true
        break
      }
    }
    b = { text, final }
    renderedBatches.set(entries, b)
  }
  return b
}
// Events read from the history per Redis call while replaying.
const PAGE = 500

export interface JobEventRoutesOptions {
  store: JobStore
  hub: EventHub
  /** What a client waits before reconnecting, sent once as `retry:` (SSE_RETRY_MS). @defaultValue 2000 */
  retryMs?: number
  /** Counts the streams open in this process (`trawl_event_subscribers`). @defaultValue none */
  metrics?: Pick<Metrics, 'subscriberOpened' | 'subscriberClosed'>
}

/**
 * `GET /jobs/:id/events`: the job's history, then its live changes, as Server-Sent Events (like
 * `as_completed`). Every event carries its stream id; `Last-Event-ID` or `?after=` resumes right
 * after it on any API process, because the history lives in Redis, not here.
 *
 * What a client is sent, so that it never sees the job go backwards and never misses or doubles
 * an event:
 * - A new client (no `Last-Event-ID`, no `after`) gets the whole history from its first entry.
 *   That entry is the `state` event written with the job itself (`queued`, in the same MULTI as
 *   the job record, with the same TTL), so the stream still opens with a state, and every later
 *   state event is newer than the ones before it. There is no separate snapshot of the job "as it
 *   is now": its counts would run ahead of the result events replayed after it, and the replay's
 *   `queued` would then move the job backwards. A client that applies the events in order ends at
 *   the job as it is now, and every event it was sent has a real stream id to resume from.
 * - A client that names an event gets exactly the events after it.
 * - A finished job whose history has nothing after the event named (its final event, or later)
 *   answers 204 No Content: a WHATWG EventSource stops reconnecting on a 204, whereas a stream
 *   that merely closes makes it reconnect forever.
 */
export const jobEventRoutes: FastifyPluginAsyncZod<JobEventRoutesOptions> = async function jobEventRoutes (app, opts) {
  const { store, hub } = opts
  // Open streams, ended when the server closes so that a deploy is not held by idle clients.
  const open = new Set<() => void>()
  app.addHook('preClose', async () => {
    for (const end of open) end()
  })
  const streamOptions = { open, retryMs: opts.retryMs ?? 2000, metrics: opts.metrics }

  const eventId = z.string().regex(EVENT_ID, 'not an event id of this stream').optional()
  app.get('/jobs/:id/events', {
    // Always a stream, whatever Accept says: the route has one representation.
    sse: { kind: 'manual' },
    // A HEAD would hold the connection like a GET and send nothing.
    exposeHeadRoute: false,
    schema: {
      params: z.object({ id: z.string() }),
      querystring: z.object({ after: eventId }),
      headers: z.object({ 'last-event-id': eventId }),
      response: { 204: z.undefined(), 400: problemSchema, 401: problemSchema, 404: problemSchema, 503: problemSchema }
    }
  }, async (request, reply) => {
    const { id } = request.params
    // The header wins: a browser's EventSource sends it on every reconnect.
    const after = request.headers['last-event-id'] ?? request.query.after
    const job = JOB_ID_PATTERN.test(id) ? await readJob(store, id, { withResults: false, offset: 0, limit: 1 }, request.tenant) : null
    if (!job) throw new JobNotFoundError(id)
    // The first page is read before answering: with nothing to send, a finished job is a 204.
    const first = await readEvents(store, id, after ?? '0-0', PAGE)
    const finished = FINAL_JOB_STATES.has(job.state)
    if (finished && first.length === 0 && after !== undefined) return reply.code(204).send()
    const stream = openStream(reply, streamOptions)
    // Only if the history is gone (it expires with the job): the job as it is, under id 0-0.
    if (first.length === 0 && after === undefined) stream.write(sseText('0-0', 'state', JSON.stringify(job)), finished)
    const cursor = await replay(store, id, after ?? '0-0', first, stream)
    // A finished job's stream ends after its history, whatever that held.
    if (cursor !== null && finished) stream.write('', true)
    else if (cursor !== null) followLive(hub, store, id, cursor, stream)
  })
}

/** One client's event stream, from its headers until the final state is sent or the client leaves. */
interface EventStream {
  /** Writes events as SSE text; false once the stream is over (final state sent or client gone). */
  write(text: string, final: boolean): boolean
  /** Hands over the live subscription, ended with the stream (at once if it already is). */
  follow(unsubscribe: () => void): void
}

/** Sends the headers and the retry hint, and keeps the stream in `open` until it ends. */
function openStream (reply: FastifyReply, opts: { open: Set<() => void>, retryMs: number, metrics: JobEventRoutesOptions['metrics'] }): EventStream {
  const { open, metrics } = opts
  reply.sse.keepAlive()
  reply.header('cache-control', 'no-store')
  reply.header('x-accel-buffering', 'no')
  reply.sse.sendHeaders()
  reply.raw.write(`retry: ${opts.retryMs}\n\n`)

  let unsubscribe: (() => void) | null = null
  let ended = false
  const end = () => reply.sse.close()
  open.add(end)
  metrics?.subscriberOpened()
  reply.sse.onClose(() => {
    ended = true
    open.delete(end)
    metrics?.subscriberClosed()
    unsubscribe?.()
  })
  return {
    write (text, final) {
      if (ended) return false
      reply.raw.write(text)
      if (final) {
        ended = true
        unsubscribe?.()
        reply.sse.close()
        return false
      }
      return true
    },
    follow (stop) {
      unsubscribe = stop
      if (ended) stop()
    }
  }
}

/**
 * The history after `cursor`, its first page already read, then page by page. Returns the id of
 * the last event sent (or `cursor` when none was), or null when the stream is over.
 */
async function replay (store: JobStore, id: string, cursor: string, first: JobEvent[], stream: EventStream): Promise<string | null> {
  let batch = first
  for (;;) {
    for (const event of batch) {
      if (!stream.write(sseText(event.id, event.event, JSON.stringify(event.data)), event.final)) return null
      cursor = event.id
    }
    if (batch.length < PAGE) return cursor
    batch = await readEvents(store, id, cursor, PAGE)
  }
}

/** Live: the process's one reader delivers what comes after `cursor`, one write per batch per client. */
function followLive (hub: EventHub, store: JobStore, id: string, cursor: string, stream: EventStream): void {
  stream.follow(hub.subscribe(store.keysOf(id).events, cursor, (entries: StreamEntry[]) => {
    const batch = renderedBatch(id, entries)
    stream.write(batch.text, batch.final)
  }))
}
