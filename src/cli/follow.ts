import { setTimeout as sleep } from 'node:timers/promises'
import { FINAL_JOB_STATES } from '../jobs/schemas.js'
import { checkResult, checkSummary, type JobSummary, type ResultItem } from './documents.js'
import { ProblemError, ProtocolError, UnreachableError } from './errors.js'
import type { TrawlClient } from './http.js'
import { readSse, type SseItem } from './sse.js'

export interface FollowHandlers {
  /** Every `state` event, the snapshot first (its counts may be ahead of the results replayed after it). */
  onState(doc: JobSummary): void
  /** Every `result` event, once per index even across reconnects. */
  onResult(item: ResultItem): void
  /** The stream dropped and will be opened again after `delayMs`. */
  onReconnect?(attempt: number, max: number, reason: string, delayMs: number): void
}

export interface FollowOptions {
  /** Aborts the stream; `followJob` then rejects with the signal's reason. */
  signal: AbortSignal
  /**
   * Reconnects in a row without a single event before giving up with exit status 3.
   * @defaultValue 5
   */
  maxReconnects?: number
  /**
   * Milliseconds without a byte (event or heartbeat comment) before the stream counts as
   * dropped. The server sends a comment at least every 15 s. @defaultValue 45000
   */
  idleMs?: number
}

/**
 * Follows `GET /jobs/:id/events` until the event that carries a final job state, which it
 * resolves with. A dropped connection is opened again with `Last-Event-ID` after the server's
 * `retry:` delay, so no event is lost or seen twice; a problem answer (the job is gone) or an
 * answer that is not an event stream ends it at once.
 */
export async function followJob (client: TrawlClient, id: string, handlers: FollowHandlers, options: FollowOptions): Promise<JobSummary> {
  const maxReconnects = options.maxReconnects ?? 5
  const stream: StreamState = { seen: new Set<number>(), lastId: undefined, retryMs: 2000 }
  let failures = 0

  for (;;) {
    const attempt = await followOnce(client, id, handlers, options, stream)
    if ('final' in attempt) return attempt.final
    failures = attempt.progressed ? 1 : failures + 1
    if (failures > maxReconnects) {
      throw new UnreachableError(`lost the event stream of job ${id} (${attempt.reason}); gave up after ${maxReconnects} reconnects`)
    }
    handlers.onReconnect?.(failures, maxReconnects, attempt.reason, stream.retryMs)
    await sleep(stream.retryMs, undefined, { signal: options.signal })
  }
}

/** What one connection hands the next. */
interface StreamState {
  /** Indexes whose result was handed on already. */
  seen: Set<number>
  /** The last event id, sent as `Last-Event-ID` on a reconnect. */
  lastId: string | undefined
  /** The server's `retry:` delay, clamped, in milliseconds. */
  retryMs: number
}

type Attempt = { final: JobSummary } | { reason: string, progressed: boolean }

/** One connection to the event stream: the final document, or why it dropped. */
async function followOnce (client: TrawlClient, id: string, handlers: FollowHandlers, options: FollowOptions, stream: StreamState): Promise<Attempt> {
  const idleMs = options.idleMs ?? 45_000
  const connection = new AbortController()
  const signal = AbortSignal.any([options.signal, connection.signal])
  let idle: NodeJS.Timeout | undefined
  const touch = () => {
    clearTimeout(idle)
    idle = setTimeout(() => connection.abort(new Error(`nothing received for ${idleMs / 1000} s`)), idleMs)
  }
  let progressed = false
  const resumedFrom = stream.lastId
  let first = true
  try {
    touch()
    const res = await client.events(id, resumedFrom, signal)
    for await (const item of readSse(res.body as AsyncIterable<Uint8Array>)) {
      touch()
      if (item.kind === 'retry') stream.retryMs = Math.min(Math.max(item.ms, 100), 30_000)
      if (item.kind !== 'event') continue
      progressed = true
      // A fresh stream opens with a snapshot of the job as it is now, then replays the whole
      // history: a finished job's snapshot is final too, but the history still follows it.
      const final = onEvent(item, id, handlers, stream, resumedFrom === undefined && first)
      if (final !== undefined) return { final }
      first = false
    }
    return { reason: 'the server ended the stream before the job finished', progressed }
  } catch (err) {
    return { reason: dropReason(err, options.signal, connection.signal), progressed }
  } finally {
    clearTimeout(idle)
    connection.abort()
  }
}

/** Hands one event to its handler; returns the job document when it carries a final state. */
function onEvent (item: Extract<SseItem, { kind: 'event' }>, id: string, handlers: FollowHandlers, stream: StreamState, snapshot: boolean): JobSummary | undefined {
  if (item.id !== undefined) stream.lastId = item.id
  if (item.event === 'result') {
    const result = checkResult(parseJson(item.data), `a result event of job ${id}`)
    if (!stream.seen.has(result.index)) {
      stream.seen.add(result.index)
      handlers.onResult(result)
    }
  } else if (item.event === 'state') {
    const doc = checkSummary(parseJson(item.data), `a state event of job ${id}`)
    handlers.onState(doc)
    if (!snapshot && FINAL_JOB_STATES.has(doc.state)) return doc
  }
  return undefined
}

/** Why a connection failed, as a reason to reconnect; rethrows what reconnecting cannot help. */
function dropReason (err: unknown, outer: AbortSignal, connection: AbortSignal): string {
  if (outer.aborted) throw outer.reason
  // The job is gone or the answer is not trawl's: reconnecting will not help.
  if (err instanceof ProblemError && err.status < 500) throw err
  if (err instanceof ProtocolError) throw err
  return connection.aborted && connection.reason instanceof Error
    ? connection.reason.message
    : err instanceof Error ? err.message : String(err)
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ProtocolError('the event stream carries data that is not JSON', { cause: err })
  }
}
