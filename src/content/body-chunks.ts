/**
 * A put's body as Buffers, for the fs store (fs-store.ts): whole when it came as an array, or
 * chunk by chunk, with a failure of the body itself told apart from the store's own. Moved out
 * of fs-store.ts unchanged.
 */
import { addAbortListener } from 'node:events'
import type { ContentBody } from './store.js'

/** An array body's chunks as one Buffer (no copy for one chunk). */
export function wholeBody (chunks: readonly Uint8Array[]): Buffer {
  const buffers = chunks.map(asBuffer)
  return buffers.length === 1 ? buffers[0] as Buffer : Buffer.concat(buffers)
}

/** A chunk as a Buffer, without copying one that is a Buffer or a view already. */
function asBuffer (value: Uint8Array | string): Buffer {
  return typeof value === 'string' ? Buffer.from(value) : Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
}

/** An error thrown by the body itself (not the store): put rethrows `inner` as it came. */
export class SourceFailure {
  constructor (readonly inner: unknown) {}
}

/**
 * Hands every chunk of `body` to `each`, in a plain loop rather than a stream pipeline (two fewer
 * streams and their ticks per body), awaiting `each` only when it returns a promise; an abort
 * ends the wait for a chunk that does not come (an origin that stalls). A failure of `body`
 * rejects with a SourceFailure, one of `each` as it was.
 *
 * The abort rejects the wait of the moment, not a promise raced with every chunk: reactions on
 * a promise that never settles pile up with the chunks they resolved, and held 20 MB bodies
 * whole (1 GB of RSS for 50 at once, docs/bench-results.md).
 */
export async function eachChunk (body: ContentBody, signal: AbortSignal | undefined, each: (chunk: Buffer) => Promise<void> | undefined): Promise<void> {
  signal?.throwIfAborted()
  const chunks = (body as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]?.() ?? toAsync(body as Iterable<Uint8Array | string>)
  let stop: ((reason: unknown) => void) | null = null
  const listener = signal ? addAbortListener(signal, () => stop?.(signal.reason)) : null
  try {
    for (;;) {
      // An abort while `each` wrote the last chunk had no wait to end.
      signal?.throwIfAborted()
      let next: IteratorResult<Uint8Array | string>
      try {
        next = signal
          ? await new Promise<IteratorResult<Uint8Array | string>>((resolve, reject) => {
            stop = reject
            chunks.next().then(resolve, reject)
          })
          : await chunks.next()
      } catch (err) {
        throw signal?.aborted === true ? err : new SourceFailure(err)
      } finally {
        stop = null
      }
      if (next.done === true) return
      const pending = each(asBuffer(next.value))
      if (pending !== undefined) await pending
    }
  } catch (err) {
    chunks.return?.(undefined)?.catch(() => {})
    throw err
  } finally {
    listener?.[Symbol.dispose]()
  }
}

function toAsync<T> (items: Iterable<T>): AsyncIterator<T> {
  const it = items[Symbol.iterator]()
  return { next: async () => it.next(), return: async () => it.return?.() ?? { done: true, value: undefined } }
}
