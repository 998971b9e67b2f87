import { setTimeout as sleep } from 'node:timers/promises'
import { FINAL_JOB_STATES } from '../jobs/schemas.js'
import { checkResult, checkSummary, type JobSummary, type ResultItem } from './documents.js'
import { ProblemError, ProtocolError, UnreachableError } from './errors.js'
import type { TrawlClient } from './http.js'
import { readSse } from './sse.js'

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
  const idleMs = options.idleMs ?? 45_000
  const seen = new Set<number>()
  let lastId: string | undefined
  let retryMs = 2000
  let failures = 0

  for (;;) {
    const connection = new AbortController()
    const signal = AbortSignal.any([options.signal, connection.signal])
    let idle: NodeJS.Timeout | undefined
    const touch = () => {
      clearTimeout(idle)
      idle = setTimeout(() => connection.abort(new Error(`nothing received for ${idleMs / 1000} s`)), idleMs)
    }
    let progressed = false
    let reason: string
    const resumedFrom = lastId
    let first = true
    try {
      touch()
      const res = await client.events(id, resumedFrom, signal)
      for await (const item of readSse(res.body as AsyncIterable<Uint8Array>)) {
        touch()
        if (item.kind === 'retry') retryMs = Math.min(Math.max(item.ms, 100), 30_000)
        if (item.kind !== 'event') continue
        progressed = true
        if (item.id !== undefined) lastId = item.id
        if (item.event === 'result') {
          const result = checkResult(parseJson(item.data), `a result event of job ${id}`)
          if (!seen.has(result.index)) {
            seen.add(result.index)
            handlers.onResult(result)
          }
        } else if (item.event === 'state') {
          const doc = checkSummary(parseJson(item.data), `a state event of job ${id}`)
          handlers.onState(doc)
          // A fresh stream opens with a snapshot of the job as it is now, then replays the whole
          // history: a finished job's snapshot is final too, but the history still follows it.
          const snapshot = resumedFrom === undefined && first
          if (!snapshot && FINAL_JOB_STATES.has(doc.state)) return doc
        }
        first = false
      }
      reason = 'the server ended the stream before the job finished'
    } catch (err) {
      if (options.signal.aborted) throw options.signal.reason
      // The job is gone or the answer is not trawl's: reconnecting will not help.
      if (err instanceof ProblemError && err.status < 500) throw err
      if (err instanceof ProtocolError) throw err
      reason = connection.signal.aborted && connection.signal.reason instanceof Error
        ? connection.signal.reason.message
        : err instanceof Error ? err.message : String(err)
    } finally {
      clearTimeout(idle)
      connection.abort()
    }
    failures = progressed ? 1 : failures + 1
    if (failures > maxReconnects) {
      throw new UnreachableError(`lost the event stream of job ${id} (${reason}); gave up after ${maxReconnects} reconnects`)
    }
    handlers.onReconnect?.(failures, maxReconnects, reason, retryMs)
    await sleep(retryMs, undefined, { signal: options.signal })
  }
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ProtocolError('the event stream carries data that is not JSON', { cause: err })
  }
}
