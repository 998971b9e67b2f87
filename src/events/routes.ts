import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { FastifyReply } from 'fastify'
import { JobNotFoundError } from '../http/problems.js'
import type { EventHub, StreamEntry } from './hub.js'
import { FINAL_JOB_STATES, JOB_ID_PATTERN } from '../jobs/schemas.js'
import { readJob } from '../jobs/documents.js'
import type { JobStore } from '../jobs/store.js'
import { parseEvent, readEvents } from './entries.js'
import { problemSchema } from '../http/problem-schema.js'

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
// What a client waits before reconnecting, sent once at the start of each stream.
const RETRY_MS = 2000

/**
 * `GET /jobs/:id/events`: the job's history, then its live changes, as Server-Sent Events (like
 * `as_completed`). Every event carries its stream id; `Last-Event-ID` or `?after=` resumes right
 * after it on any API process, because the history lives in Redis, not here.
 */
export const jobEventRoutes: FastifyPluginAsyncZod<{ store: JobStore, hub: EventHub }> = async function jobEventRoutes (app, { store, hub }) {
  // Open streams, ended when the server closes so that a deploy is not held by idle clients.
  const open = new Set<() => void>()
  app.addHook('preClose', async () => {
    for (const end of open) end()
  })

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
      response: { 400: problemSchema, 401: problemSchema, 404: problemSchema, 503: problemSchema }
    }
  }, async (request, reply) => {
    const { id } = request.params
    // The header wins: a browser's EventSource sends it on every reconnect.
    const after = request.headers['last-event-id'] ?? request.query.after
    const snapshot = JOB_ID_PATTERN.test(id) ? await readJob(store, id, { withResults: false, offset: 0, limit: 1 }, request.tenant) : null
    if (!snapshot) throw new JobNotFoundError(id)
    const stream = openStream(reply, open)
    const cursor = await replayHistory(store, id, after, snapshot, stream)
    if (cursor !== null) followLive(hub, store, id, cursor, stream)
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
function openStream (reply: FastifyReply, open: Set<() => void>): EventStream {
  reply.sse.keepAlive()
  reply.header('cache-control', 'no-store')
  reply.header('x-accel-buffering', 'no')
  reply.sse.sendHeaders()
  reply.raw.write(`retry: ${RETRY_MS}\n\n`)

  let unsubscribe: (() => void) | null = null
  let ended = false
  const end = () => reply.sse.close()
  open.add(end)
  reply.sse.onClose(() => {
    ended = true
    open.delete(end)
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
 * The snapshot (for a new client) and the history after `after`, read from the job's stream in
 * pages. Returns the id of the last event sent, or null when the stream is over.
 */
async function replayHistory (store: JobStore, id: string, after: string | undefined, snapshot: { state: string }, stream: EventStream): Promise<string | null> {
  // A new client gets the current state first, under id 0-0: reconnecting with it replays all.
  let cursor = after ?? '0-0'
  if (after === undefined) stream.write(sseText('0-0', 'state', JSON.stringify(snapshot)), false)
  for (;;) {
    const batch = await readEvents(store, id, cursor, 500)
    for (const event of batch) {
      if (!stream.write(sseText(event.id, event.event, JSON.stringify(event.data)), event.final)) return null
      cursor = event.id
    }
    if (batch.length < 500) break
  }
  // Resumed after the last event of a finished job: nothing more will come.
  if (FINAL_JOB_STATES.has(snapshot.state)) {
    stream.write('', true)
    return null
  }
  return cursor
}

/** Live: the process's one reader delivers what comes after `cursor`, one write per batch per client. */
function followLive (hub: EventHub, store: JobStore, id: string, cursor: string, stream: EventStream): void {
  stream.follow(hub.subscribe(store.keysOf(id).events, cursor, (entries: StreamEntry[]) => {
    const batch = renderedBatch(id, entries)
    stream.write(batch.text, batch.final)
  }))
}
