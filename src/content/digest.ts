import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { Transform } from 'node:stream'
import type { TransformCallback } from 'node:stream'
import type { ContentBody } from './store.js'

/** Bytes and hex sha256 of what passed through a `Digesting` source so far. */
export interface Digest {
  bytes: number
  sha256: string
}

/**
 * Wraps a body so that every chunk is counted and hashed as the store pulls it, and so that
 * an error thrown by the body itself is remembered (`sourceError`): `put` rethrows the body's
 * error as it came, and turns only the store's own failures into ContentStoreError.
 */
export class Digesting {
  readonly #hash: Hash = createHash('sha256')
  #bytes = 0
  /** Set when the body (not the store) threw. */
  sourceFailed = false
  sourceError: unknown = undefined

  constructor (private readonly source: ContentBody) {}

  async * chunks (): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of this.source as AsyncIterable<Uint8Array | string>) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
        this.#hash.update(bytes)
        this.#bytes += bytes.byteLength
        yield bytes
      }
    } catch (err) {
      this.sourceFailed = true
      this.sourceError = err
      throw err
    }
  }

  /** Call once, after the last chunk. */
  digest (): Digest {
    return { bytes: this.#bytes, sha256: this.#hash.digest('hex') }
  }
}

/** A body whose bytes do not match the sha256 (or size) its result records. */
export class ContentIntegrityError extends Error {
  override readonly name = 'ContentIntegrityError'
  constructor (readonly expected: Digest, readonly actual: Digest) {
    super(actual.bytes !== expected.bytes
      ? `the body has ${actual.bytes} bytes, its result says ${expected.bytes}`
      : `the body's sha256 is ${actual.sha256}, its result says ${expected.sha256}`)
  }
}

/**
 * A pass-through that hashes what it passes and, at the end, errors with ContentIntegrityError
 * instead of ending when the bytes do not match `expected`: a reader piping a stored body
 * through it never ends cleanly on a truncated or corrupted body. `expected.bytes` may be
 * omitted to check the hash alone.
 */
export function verifyingStream (expected: { sha256: string, bytes?: number }): Transform {
  const hash = createHash('sha256')
  let bytes = 0
  return new Transform({
    transform (chunk: Buffer, _enc, cb: TransformCallback) {
      hash.update(chunk)
      bytes += chunk.length
      if (expected.bytes !== undefined && bytes > expected.bytes) {
        cb(new ContentIntegrityError({ bytes: expected.bytes, sha256: expected.sha256 }, { bytes, sha256: '(longer)' }))
        return
      }
      cb(null, chunk)
    },
    flush (cb: TransformCallback) {
      cb(mismatch({ bytes, sha256: hash.digest('hex') }, expected))
    }
  })
}

/** Throws ContentIntegrityError unless `whole` matches `expected` (a body read in one go). */
export function verifyWhole (whole: Buffer, expected: { sha256: string, bytes?: number }): void {
  const error = mismatch({ bytes: whole.byteLength, sha256: createHash('sha256').update(whole).digest('hex') }, expected)
  if (error !== null) throw error
}

/** Reads `body` whole (without keeping it) and tells whether it matches `expected`. */
export async function checkBody (body: AsyncIterable<Uint8Array>, expected: { sha256: string, bytes?: number }): Promise<{ ok: boolean, actual: Digest }> {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of body) {
    hash.update(chunk)
    bytes += chunk.byteLength
  }
  const actual = { bytes, sha256: hash.digest('hex') }
  return { ok: mismatch(actual, expected) === null, actual }
}

/** The error for a body whose digest is not the one expected (`expected.bytes` may be left out), or null. */
function mismatch (actual: Digest, expected: { sha256: string, bytes?: number }): ContentIntegrityError | null {
  const want = { bytes: expected.bytes ?? actual.bytes, sha256: expected.sha256.toLowerCase() }
  return actual.bytes === want.bytes && actual.sha256 === want.sha256 ? null : new ContentIntegrityError(want, actual)
}
