import { z } from 'zod'
import { itemFromStored, summarize } from '../jobs/documents.js'
import { FINAL_JOB_STATES, storedResultSchema, type JobSummary, type ResultItem } from '../jobs/schemas.js'
import { storedMetaSchema, type JobStore } from '../jobs/store.js'

/**
 * The entries of a job's history stream (written by jobs/redis-store.ts create(), lanes/step.lua
 * and jobs/finish.lua) turned into the events the API sends:
 * `e state m <meta as a JSON array of field, value>` and `e result i <index> u <url> r <result JSON>`.
 */

/** One entry of a job's history, as the event stream sends it. */
export type JobEvent =
  | { id: string, event: 'state', data: JobSummary, final: boolean }
  | { id: string, event: 'result', data: ResultItem, final: false }

/** Turns a stream entry (field, value, field, value...) into the event the API sends. */
export function parseEvent (jobId: string, eventId: string, fields: string[]): JobEvent {
  const f: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string
  if (f.e === 'state') {
    const flat = z.array(z.string()).parse(JSON.parse(f.m ?? '[]'))
    const raw: Record<string, string> = {}
    for (let i = 0; i + 1 < flat.length; i += 2) raw[flat[i] as string] = flat[i + 1] as string
    const meta = storedMetaSchema.parse(raw)
    // A state event's time is its stream id's: the duration of a running job as of that event.
    const data = summarize(meta, Number(eventId.split('-')[0]))
    return { id: eventId, event: 'state', data, final: FINAL_JOB_STATES.has(data.state) }
  }
  const result = storedResultSchema.parse(JSON.parse(f.r ?? 'null'))
  return { id: eventId, event: 'result', data: itemFromStored(jobId, Number(f.i), f.u ?? '', result), final: false }
}

/** Up to `count` events of the job's history after event id `after` ('0-0': from the start). */
export async function readEvents (store: Pick<JobStore, 'events'>, id: string, after: string, count = 500): Promise<JobEvent[]> {
  const entries = await store.events(id, after, count)
  return entries.map(([eventId, fields]) => parseEvent(id, eventId, fields))
}
