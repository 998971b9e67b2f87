import { Transform, Writable } from 'node:stream'
import type { TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import type { Dispatcher } from 'undici'
import type { ResultErrorCode } from '../jobs/result-codes.js'

/**
 * Reading a body under its size cap: undoing the content codings trawl asks for (gzip, deflate
 * zlib-wrapped or raw, br), counting decoded bytes, and keeping or dropping them as they stream.
 */

/** The `accept-encoding` of every request: exactly the codings `decoderFor` can undo. */
export const ACCEPT_ENCODING = 'gzip, deflate, br'

/** The response headers that frame a body, as received (null when absent). */
export interface BodyFraming {
  contentEncoding: string | null
  contentLength: string | null
}

/** What to do with the decoded bytes. */
export interface BodyLimits {
  /** Cap on the decoded body in bytes; past it reading stops with `TOO_LARGE`. */
  maxBytes: number
  /** Keep the decoded bytes; when false they are counted and dropped. */
  keepContent: boolean
}

/** The body read whole, or why reading stopped; aborts and transport faults are thrown instead. */
export type BodyOutcome =
  | { ok: true, body: Buffer | null }
  | { ok: false, code: Extract<ResultErrorCode, 'TOO_LARGE' | 'NETWORK'>, message: string }

type Body = Dispatcher.ResponseData['body']

class TooLargeError extends Error {
  readonly code = 'TOO_LARGE'
}

const tooLarge = (maxBytes: number): string => `the decoded body exceeds maxBytes (${maxBytes})`

/**
 * Reads `body` whole, decoded, adding the decoded bytes to `counter.bytes` as they arrive (so
 * a failure reports how far it got). `signal` is the request's: its abort rejects.
 */
export function readBody (body: Body, framing: BodyFraming, limits: BodyLimits, counter: { bytes: number }, signal: AbortSignal): Promise<BodyOutcome> {
  // Not async: on the hot path (a small plain page) every extra async frame costs measurable CPU.
  const codings = contentCodings(framing.contentEncoding)
  if (codings.length > 0) return readDecodedBody(body, codings, limits, counter, signal)
  const declared = Number(framing.contentLength ?? NaN)
  if (declared > limits.maxBytes) {
    body.destroy()
    return Promise.resolve({ ok: false, code: 'TOO_LARGE', message: `the body is ${declared} bytes, more than maxBytes (${limits.maxBytes})` })
  }
  return readPlainBody(body, limits, counter)
}

/**
 * A body with no content coding, read with a plain loop: a stream pipeline costs about as much
 * CPU per small page as the rest of the fetch (bench/fetch-micro.ts). The request's signal
 * destroys the body on abort, and leaving the loop early destroys it too.
 */
async function readPlainBody (body: Body, limits: BodyLimits, counter: { bytes: number }): Promise<BodyOutcome> {
  const chunks: Buffer[] = []
  for await (const chunk of body as AsyncIterable<Buffer>) {
    counter.bytes += chunk.length
    if (counter.bytes > limits.maxBytes) return { ok: false, code: 'TOO_LARGE', message: tooLarge(limits.maxBytes) }
    if (limits.keepContent) chunks.push(chunk)
  }
  return { ok: true, body: !limits.keepContent ? null : chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks, counter.bytes) }
}

async function readDecodedBody (body: Body, codings: string[], limits: BodyLimits, counter: { bytes: number }, signal: AbortSignal): Promise<BodyOutcome> {
  const chunks: Buffer[] = []
  const sink = new Writable({
    write (chunk: Buffer, _enc, cb) {
      counter.bytes += chunk.length
      if (counter.bytes > limits.maxBytes) {
        cb(new TooLargeError(tooLarge(limits.maxBytes)))
        return
      }
      if (limits.keepContent) chunks.push(chunk)
      cb()
    }
  })
  try {
    // pipeline destroys every stage on failure: the body is not read any further, and a
    // decompression bomb stops at maxBytes because zlib honours backpressure.
    await pipeline([body, ...codings.map(decoderFor), sink], { signal })
  } catch (err) {
    if (err instanceof TooLargeError) return { ok: false, code: 'TOO_LARGE', message: err.message }
    if (signal.aborted) throw err
    if (isDecodeError(err)) return { ok: false, code: 'NETWORK', message: `the ${codings.join(', ')} body could not be decoded: ${(err as Error).message}` }
    throw err
  }
  return { ok: true, body: limits.keepContent ? Buffer.concat(chunks, counter.bytes) : null }
}

/** The codings to undo, outermost first; [] when there is nothing trawl can decode. */
export function contentCodings (header: string | null): string[] {
  if (header === null) return []
  const codings = header.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity')
  // All or nothing, as undici's fetch does: with a coding trawl cannot undo anywhere in the
  // list, the body is kept as it came.
  if (!codings.every((c) => c === 'gzip' || c === 'x-gzip' || c === 'deflate' || c === 'br')) return []
  return codings.reverse()
}

// Browsers and curl accept a body cut short of its compression trailer (and an empty one);
// Z_SYNC_FLUSH lets zlib end there too, while the HTTP framing still catches a short transfer.
const zlibLenient = { flush: zlib.constants.Z_SYNC_FLUSH, finishFlush: zlib.constants.Z_SYNC_FLUSH }
const brotliLenient = { flush: zlib.constants.BROTLI_OPERATION_FLUSH, finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH }

/** A decoder for one coding `contentCodings` returned (anything else is taken as gzip). */
export function decoderFor (coding: string): Transform {
  if (coding === 'br') return zlib.createBrotliDecompress(brotliLenient)
  if (coding === 'deflate') return new InflateAuto()
  return zlib.createGunzip(zlibLenient)
}

/**
 * "deflate" is meant to be zlib-wrapped (RFC 9110), but some servers send raw deflate; the
 * first byte tells them apart. The inner inflater's output is paused while this stream's
 * reader is full, so backpressure (and with it the size cap) holds through the wrapper.
 */
export class InflateAuto extends Transform {
  #inner: zlib.Inflate | zlib.InflateRaw | null = null

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#inner === null) {
      if (chunk.length === 0) {
        cb()
        return
      }
      // A zlib header's low nibble is 8 (the deflate method); a raw stream's first byte is not.
      const inner = ((chunk[0] ?? 0) & 0x0f) === 0x08 ? zlib.createInflate(zlibLenient) : zlib.createInflateRaw(zlibLenient)
      inner.on('data', (d: Buffer) => { if (!this.push(d)) inner.pause() })
      inner.on('error', (err) => this.destroy(err))
      this.#inner = inner
    }
    this.#inner.write(chunk, cb)
  }

  override _read (size: number): void {
    this.#inner?.resume()
    super._read(size)
  }

  override _flush (cb: TransformCallback): void {
    const inner = this.#inner
    if (inner === null) {
      cb()
      return
    }
    inner.once('end', () => cb())
    inner.end()
  }

  override _destroy (err: Error | null, cb: (error?: Error | null) => void): void {
    this.#inner?.destroy()
    cb(err)
  }
}

/** zlib's and brotli's verdicts on a garbled stream (as opposed to a transport fault). */
export function isDecodeError (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && (code.startsWith('Z_') || code.startsWith('ERR_BROTLI') || code === 'ERR_ZLIB_INITIALIZATION_FAILED')
}
