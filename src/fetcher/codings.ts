import { Transform } from 'node:stream'
import type { TransformCallback } from 'node:stream'
import zlib from 'node:zlib'

/**
 * The content codings trawl undoes (gzip, deflate zlib-wrapped or raw, br): which ones a
 * Content-Encoding asks for, a decoder for each, and how their failures read. decode.ts runs
 * them in a body's pipeline.
 */

/** The `accept-encoding` of every request: exactly the codings `decoderFor` can undo. */
export const ACCEPT_ENCODING = 'gzip, deflate, br'

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
