import { pipeline } from 'node:stream/promises'
import type { Dispatcher } from 'undici'
import type { ResultErrorCode } from '../jobs/result-codes.js'
import { contentCodings, decoderFor, isDecodeError } from './codings.js'

/**
 * Reading a body under its size cap: undoing the content codings trawl asks for (codings.ts),
 * counting decoded bytes, and streaming them into a sink (the content store) or dropping them
 * as they come. Only a small plain body (WHOLE_BODY_BYTES) is held whole here.
 */

/** The response headers that frame a body, as received (null when absent). */
export interface BodyFraming {
  contentEncoding: string | null
  contentLength: string | null
}

/** What to do with the decoded bytes. */
export interface BodyLimits {
  /** Cap on the decoded body in bytes; past it reading stops with `TOO_LARGE`. */
  maxBytes: number
}

/**
 * Where a body to keep goes, as it is decoded: `sink` reads `chunks` (the decoded bytes, under
 * the cap; for a small plain body, the whole body as one buffer in an array) at its own pace and resolves with the stored body's sha256 once it has all of it.
 * When `chunks` throws (the body failed: cap, decoding, transport, abort), the sink must reject
 * with that same error and keep nothing; any other rejection is the sink's own failure and
 * ends the body `STORAGE_FAILED`. `signal` is the attempt's (deadline and caller): the sink
 * stops when it aborts. content/ContentStore.put keeps exactly this promise.
 */
export type BodySink = (chunks: AsyncIterable<Buffer> | readonly Buffer[], meta: { contentType: string | null }, signal: AbortSignal) => Promise<{ sha256: string }>

/**
 * A plain body that declares at most this many bytes is read whole before it goes to the sink,
 * as one buffer: for a small page the async iterables of a stream cost more CPU than the rest
 * of its body's way to the store (bench/fetch-micro.ts). The content store holds bodies this
 * small in memory anyway (the fs store's SMALL_BODY_BYTES). 256 KiB covers most HTML pages: the
 * seed's 150 KB pages written whole took 41 against 45 ms, and their last result was seen 5
 * against 9 ms after the last answer, where 64 KiB streamed them (docs/bench-results.md). What
 * it holds at once is bounded by the lanes: 50 lanes x 256 KiB = 12.5 MiB at the most.
 */
export const WHOLE_BODY_BYTES = 256 * 1024

/** The body read whole, or why reading stopped; aborts and transport faults are thrown instead. */
export type BodyOutcome =
  | { ok: true, sha256: string | null }
  | { ok: false, code: Extract<ResultErrorCode, 'TOO_LARGE' | 'NETWORK' | 'STORAGE_FAILED'>, message: string }

type Body = Dispatcher.ResponseData['body']

class TooLargeError extends Error {
  readonly code = 'TOO_LARGE'
}

/** The sink failed on its own (not because the body did): STORAGE_FAILED. */
class SinkError extends Error {
  constructor (readonly inner: unknown) {
    super(inner instanceof Error ? inner.message : String(inner))
  }
}

const tooLarge = (maxBytes: number): string => `the decoded body exceeds maxBytes (${maxBytes})`

/** Counts `chunk` into `counter.bytes`; true once the count is past the cap. */
function pastCap (chunk: Buffer, limits: BodyLimits, counter: { bytes: number }): boolean {
  counter.bytes += chunk.length
  return counter.bytes > limits.maxBytes
}

/** A sink's rejection that is not the body's own: the abort's reason, else a SinkError (STORAGE_FAILED). */
function sinkFailure (err: unknown, signal: AbortSignal): unknown {
  return signal.aborted ? signal.reason : new SinkError(err)
}

/** Where the decoded bytes go: a sink (kept) or nowhere (counted and dropped). */
export interface BodyTarget {
  sink: BodySink | null
  contentType: string | null
}

/**
 * Reads `body` whole, decoded, adding the decoded bytes to `counter.bytes` as they arrive (so
 * a failure reports how far it got), into `target.sink` when there is one. `signal` is the
 * request's: its abort rejects.
 */
export function readBody (body: Body, framing: BodyFraming, limits: BodyLimits, counter: { bytes: number }, signal: AbortSignal, target: BodyTarget = { sink: null, contentType: null }): Promise<BodyOutcome> {
  // Not async: on the hot path (a small plain page) every extra async frame costs measurable CPU.
  const codings = contentCodings(framing.contentEncoding)
  if (codings.length > 0) return readDecodedBody(body, codings, limits, counter, signal, target)
  const declared = Number(framing.contentLength ?? NaN)
  if (declared > limits.maxBytes) {
    drop(body)
    return Promise.resolve({ ok: false, code: 'TOO_LARGE', message: `the body is ${declared} bytes, more than maxBytes (${limits.maxBytes})` })
  }
  const { sink } = target
  if (sink !== null && declared <= WHOLE_BODY_BYTES) return settle(() => wholeIntoSink(body, limits, counter, signal, { sink, contentType: target.contentType }), signal).finally(() => drop(body))
  if (sink !== null) return settle(() => intoSink(body, limits, counter, signal, { sink, contentType: target.contentType }), signal).finally(() => drop(body))
  return dropPlainBody(body, limits, counter)
}

/** A small plain body read whole (collect), then handed to the sink as one buffer. */
async function wholeIntoSink (body: Body, limits: BodyLimits, counter: { bytes: number }, signal: AbortSignal, target: BodyTarget & { sink: BodySink }): Promise<string> {
  const data = await collect(body, limits, counter)
  try {
    return (await target.sink([data], { contentType: target.contentType }, signal)).sha256
  } catch (err) {
    throw sinkFailure(err, signal)
  }
}

/**
 * The chunks of `body` as one buffer, counted into `counter.bytes` as they come, through the
 * stream's own events: no promise per chunk. Rejects with the body's error (an abort of the
 * request's signal destroys the body with it), or TooLargeError past the cap (undici holds a
 * body to its Content-Length, but the cap does not trust that).
 */
function collect (body: Body, limits: BodyLimits, counter: { bytes: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const start = counter.bytes
    const done = (err: unknown): void => {
      body.off('data', onData).off('end', onEnd).off('error', done).off('close', onClose)
      if (err !== null) reject(err)
      else resolve(chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks, counter.bytes - start))
    }
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk)
      if (pastCap(chunk, limits, counter)) done(new TooLargeError(tooLarge(limits.maxBytes)))
    }
    const onEnd = (): void => done(null)
    // Closed without an end or an error of its own: the body was cut.
    const onClose = (): void => done(body.errored ?? new Error('the body was closed before its end'))
    body.on('data', onData).once('end', onEnd).once('error', done).once('close', onClose)
  })
}

/** Drops what is left of a body a sink gave up on without reading it (undici then errors it: caught here). */
function drop (body: Body): void {
  if (body.readableEnded) return
  body.on('error', () => {})
  body.destroy()
}

/**
 * A body with no content coding and nowhere to go, read with a plain loop: a stream pipeline
 * costs about as much CPU per small page as the rest of the fetch (bench/fetch-micro.ts). The
 * request's signal destroys the body on abort, and leaving the loop early destroys it too.
 */
async function dropPlainBody (body: Body, limits: BodyLimits, counter: { bytes: number }): Promise<BodyOutcome> {
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (pastCap(chunk, limits, counter)) return { ok: false, code: 'TOO_LARGE', message: tooLarge(limits.maxBytes) }
  }
  return { ok: true, sha256: null }
}

/** Counts the decoded chunks as they pass, and stops with TooLargeError past the cap. */
async function * capped (source: AsyncIterable<Buffer>, limits: BodyLimits, counter: { bytes: number }): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    if (pastCap(chunk, limits, counter)) throw new TooLargeError(tooLarge(limits.maxBytes))
    yield chunk
  }
}

/** Streams the decoded bytes into the sink; a rejection that is not the body's own is a SinkError. */
async function intoSink (source: AsyncIterable<Buffer>, limits: BodyLimits, counter: { bytes: number }, signal: AbortSignal, target: BodyTarget & { sink: BodySink }): Promise<string> {
  let bodyError: { err: unknown } | null = null
  // capped(), with the body's own failure remembered: one generator per body, not two.
  async function * watched (): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of source) {
        if (pastCap(chunk, limits, counter)) throw new TooLargeError(tooLarge(limits.maxBytes))
        yield chunk
      }
    } catch (err) {
      bodyError = { err }
      throw err
    }
  }
  try {
    return (await target.sink(watched(), { contentType: target.contentType }, signal)).sha256
  } catch (err) {
    if (bodyError !== null) throw (bodyError as { err: unknown }).err
    throw sinkFailure(err, signal)
  }
}

/** The outcome of a read into a sink: TOO_LARGE, STORAGE_FAILED, decode errors as outcomes; the rest thrown. */
async function settle (read: () => Promise<string | null>, signal: AbortSignal, codings: string[] = []): Promise<BodyOutcome> {
  try {
    return { ok: true, sha256: await read() }
  } catch (err) {
    if (err instanceof TooLargeError) return { ok: false, code: 'TOO_LARGE', message: err.message }
    if (signal.aborted) throw err
    if (err instanceof SinkError) return { ok: false, code: 'STORAGE_FAILED', message: `the body could not be stored: ${err.message}` }
    if (isDecodeError(err)) return { ok: false, code: 'NETWORK', message: `the ${codings.join(', ')} body could not be decoded: ${(err as Error).message}` }
    throw err
  }
}

async function readDecodedBody (body: Body, codings: string[], limits: BodyLimits, counter: { bytes: number }, signal: AbortSignal, target: BodyTarget): Promise<BodyOutcome> {
  const { sink } = target
  let last: Promise<string | null> = Promise.resolve(null)
  // The last stage: the decoded bytes into the sink, or counted and dropped.
  const consume = (decoded: AsyncIterable<Buffer>): Promise<string | null> => (last = sink !== null
    ? intoSink(decoded, limits, counter, signal, { sink, contentType: target.contentType })
    : drain(capped(decoded, limits, counter)))
  return await settle(async () => {
    try {
      // pipeline destroys every stage on failure: the body is not read any further, and a
      // decompression bomb stops at maxBytes because zlib honours backpressure. The typings of
      // the array form know no function stage; the runtime takes one last.
      await pipeline([body, ...codings.map(decoderFor), consume] as unknown as NodeJS.ReadWriteStream[], { signal })
    } catch (err) {
      // pipeline may reject with the AbortError of the stage before the last, destroyed as the
      // last gave up, while the sink still removes what it wrote: the last stage's end decides.
      const own = await last.then(() => null, (e: unknown) => ({ e }))
      throw own === null ? err : own.e
    }
    return await last
  }, signal, codings)
}

async function drain (chunks: AsyncGenerator<Buffer>): Promise<null> {
  while (!(await chunks.next()).done);
  return null
}
